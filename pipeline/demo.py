"""`python -m pipeline run`: the embedded stack, a worker and the bundled sample, in one command.

It shows a newcomer every output of the pipeline: enriched rows in ClickHouse, messages on the
alert topic, the metrics endpoint and the live dashboard; Ctrl-C stops everything it started.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import faust
from aiokafka import AIOKafkaConsumer

from pipeline.app import Runtime
from pipeline.connectors.files import JsonlFileConnector
from pipeline.samples.generate import generate
from pipeline.schemas import Alert, decode
from pipeline.settings import STAGES, Settings, Topics
from pipeline.stack import EmbeddedStack, mask_url
from pipeline.worker import run_worker

SETTLE_S = 3.0


def sample_path(settings: Settings) -> Path:
    path = settings.data_dir / "sample_posts.jsonl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"".join(post.encode() + b"\n" for post in generate(seed=7, count=600)))
    return path


async def read_alerts(settings: Settings) -> list[Alert]:
    consumer = AIOKafkaConsumer(
        settings.topic(Topics.ALERTS), **settings.kafka_client_kwargs(), auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=2000)
        return [decode(m.value, Alert) for records in batches.values() for m in records]
    finally:
        await consumer.stop()


def summarise(runtime: Runtime, alerts: list[Alert]) -> str:
    settings, db = runtime.settings, runtime.settings.clickhouse_database
    query = runtime.sink.query
    total = query(f"SELECT count() FROM {db}.posts FINAL")[0][0]
    by_topic = query(
        f"SELECT topic, count(), round(avg(sentiment_score), 2) FROM {db}.posts FINAL GROUP BY topic ORDER BY 2 DESC"
    )
    by_path = query(f"SELECT model_path, count() FROM {db}.posts FINAL GROUP BY model_path ORDER BY 2 DESC")
    lines = [
        "",
        f"== {total} enriched posts in ClickHouse ({mask_url(settings.resolved_clickhouse_url)}, table {db}.posts) ==",
        *(f"   {topic:<34} {n:>5} posts, mean sentiment {s:+.2f}" for topic, n, s in by_topic),
        "   model paths: " + ", ".join(f"{p}={n}" for p, n in by_path),
        f"== {len(alerts)} messages on topic {settings.topic(Topics.ALERTS)} ==",
        *(
            f"   [{a.severity}] {a.state.value:<8} {a.watch}/{a.key}: {a.observed} posts in "
            f"{a.window_start:%Y-%m-%d %H:%M}–{a.window_end:%H:%M} (baseline {_number(a.baseline)}), "
            f"negative {a.negative_share:.0%}; terms: {', '.join(a.top_terms[:5])}"
            for a in alerts
        ),
        f"== metrics: http://{settings.metrics_host}:{settings.metrics_port}/metrics",
        f"== dashboard: http://127.0.0.1:{settings.web_port}/",
        "Ctrl-C stops the worker and the embedded stack.",
    ]
    return "\n".join(lines)


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def add_sample_feed(sample: Path, speed: float):
    """A worker task that feeds the sample, waits for the pipeline to settle, then prints a summary."""

    def extra(app: faust.App, runtime: Runtime) -> None:
        @app.task
        async def feed_sample() -> None:
            connector = JsonlFileConnector(runtime.settings, path=sample, speed=speed, name="sample")
            stats = await connector.run()
            print(f"fed {stats.posts} posts ({stats.dead_letters} dead letters) from {sample}", flush=True)
            await wait_until_settled(runtime)
            alerts = await read_alerts(runtime.settings)
            print(summarise(runtime, alerts), flush=True)

    return extra


async def wait_until_settled(runtime: Runtime, timeout_s: float = 120.0) -> None:
    """Until the post count stops moving and the idle alert windows have closed."""
    db = runtime.settings.clickhouse_database
    loop = asyncio.get_running_loop()
    last, stable_since, deadline = -1, time.monotonic(), time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        count = (await loop.run_in_executor(None, runtime.sink.query, f"SELECT count() FROM {db}.posts"))[0][0]
        if count != last:
            last, stable_since = count, time.monotonic()
        elif count > 0 and time.monotonic() - stable_since > runtime.settings.alert_idle_flush_s + SETTLE_S + 5:
            return
        await asyncio.sleep(1.0)


def run_demo(settings: Settings, sample: Path | None, persistent: bool, speed: float) -> None:
    if not persistent:
        # the in-memory broker starts empty; so must everything derived from its topics
        for stale in ("chdb", "checkpoints"):
            shutil.rmtree(settings.data_dir / stale, ignore_errors=True)
    with EmbeddedStack(settings, persistent=persistent):
        # the demo reads ClickHouse and the alert topic: its one worker runs every stage, whatever
        # WORKER_STAGES the shell exports for split deployments
        feed = add_sample_feed(sample or sample_path(settings), speed)
        run_worker(settings.model_copy(update={"worker_stages": STAGES}), extra=feed)
