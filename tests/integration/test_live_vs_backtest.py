"""The live pipeline and a backtest over the same range emit the same alerts, and the CLI scores them."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from pipeline.alerting.watches import load_watches
from pipeline.backtest import read_enriched, run_watches
from pipeline.backtest_range import backtest_range
from pipeline.connectors.files import JsonlFileConnector
from pipeline.samples.generate import generate
from pipeline.schemas import Alert, decode
from pipeline.settings import PROJECT_ROOT, Topics
from pipeline.stack import free_port
from pipeline.testing import settings_env, wait_until
from pipeline.topics import ensure_topics
from tests.integration.kafka_io import read_topic

pytestmark = pytest.mark.integration

RANGE = (datetime(2015, 2, 1, tzinfo=timezone.utc), datetime(2015, 3, 1, tzinfo=timezone.utc))
INCIDENTS = PROJECT_ROOT / "models" / "incidents" / "sample_hk_2015.yaml"


def test_backtest_reproduces_the_live_alerts_exactly(make_settings, worker_factory, tmp_path):
    settings = make_settings(alert_idle_flush_s=3.0, topic_partitions=4)
    asyncio.run(ensure_topics(settings))
    sample = tmp_path / "sample.jsonl"
    sample.write_bytes(b"".join(p.encode() + b"\n" for p in generate(seed=7, count=600)))
    worker = worker_factory(settings)
    asyncio.run(JsonlFileConnector(settings, path=sample, name="sample").run())

    def alerts_settled() -> bool:
        return worker.metric("pd_sink_rows_total", table="posts") == 600 and worker.metric(
            "pd_alerts_total", state="resolved"
        ) >= 1

    wait_until(alerts_settled, 180, "live run stored the sample and resolved its alerts")
    live = [decode(r.value, Alert) for r in asyncio.run(read_topic(settings, Topics.ALERTS, expected=2, idle_s=None, timeout_s=10))]
    assert any(a.watch == "hk_mainland_tourists" and a.state.value == "open" for a in live)

    posts = asyncio.run(read_enriched(settings, *RANGE))
    assert len(posts) == 600
    backtest = run_watches(posts, load_watches(settings.watches_dir))
    assert backtest == live

    # replay the raw range into a namespace of its own, re-process it there: the same alerts again
    replayed, stats = asyncio.run(backtest_range(settings, *RANGE, run_id="again"))
    assert stats.produced == 600
    worker.stop()  # the replay's worker writes its own database on the same embedded engine
    replay_worker = worker_factory(replayed.model_copy(update={"metrics_port": free_port(), "web_port": free_port()}))
    wait_until(lambda: replay_worker.metric("pd_sink_rows_total", table="posts") == 600, 180, "replay re-processed")
    replayed_posts = asyncio.run(read_enriched(replayed, *RANGE))
    assert run_watches(replayed_posts, load_watches(settings.watches_dir)) == live

    cli = subprocess.run(
        [sys.executable, "-m", "pipeline", "backtest", "--from", "2015-02-01", "--to", "2015-03-01",
         "--incidents", str(INCIDENTS)],  # fmt: skip
        cwd=PROJECT_ROOT, env=settings_env(settings), capture_output=True, text=True, timeout=120, check=True,
    )
    assert "600 enriched posts" in cli.stdout
    assert "recall 100%" in cli.stdout and "lead time +" in cli.stdout
