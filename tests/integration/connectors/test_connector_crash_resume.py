"""Connector processes: stopped mid-file (SIGKILL or SIGTERM) and restarted nothing is lost; fatal errors exit 1."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from aiohttp import web

from pipeline.settings import PROJECT_ROOT, Settings, Topics
from pipeline.testing import wait_until
from pipeline.topics import ensure_topics
from tests.integration.kafka_io import read_topic
from tests.unit.connectors.recorded_api import recorded_bytes

pytestmark = pytest.mark.integration

LINES = 300
RUN = (
    "import sys; from pipeline.connectors import run_connector; "
    "run_connector('jsonl', path=sys.argv[1], max_posts_per_s=60, checkpoint_interval_s=0.2)"
)


def connector_env(settings: Settings) -> dict[str, str]:
    return dict(
        os.environ,
        KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        TOPIC_PREFIX=settings.topic_prefix,
        DATA_DIR=str(settings.data_dir),
    )


def start_connector(settings: Settings, path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", RUN, str(path)], cwd=PROJECT_ROOT, env=connector_env(settings))


def checkpointed_line(path) -> int:
    try:
        return json.loads(path.read_text())["position"]["line"]
    except FileNotFoundError:
        return 0


def write_posts(path) -> None:
    t0 = datetime(2024, 6, 1, tzinfo=timezone.utc)
    path.write_text(
        "".join(
            json.dumps(
                {
                    "id": f"l{i:03d}",
                    "source": "file",
                    "text": f"line {i}",
                    "created_at": (t0 + timedelta(seconds=i)).isoformat(),
                }
            )
            + "\n"
            for i in range(LINES)
        )
    )


async def stop_after_checkpoint(process: subprocess.Popen, checkpoint_path, line: int, sig: signal.Signals) -> None:
    """Signal `process` a moment after its checkpoint passed `line` (so sent-but-unsaved records exist)."""
    while checkpointed_line(checkpoint_path) < line:
        assert process.poll() is None, "connector finished before it could be stopped"
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    process.send_signal(sig)
    await asyncio.to_thread(process.wait, 30)


async def test_sigkill_mid_file_then_restart_delivers_every_line_and_resumes(
    make_settings, tmp_path, worker_factory, open_chdb
):
    settings = make_settings()
    await ensure_topics(settings)
    path = tmp_path / "posts.jsonl"
    write_posts(path)
    checkpoint_path = settings.data_dir / "checkpoints" / "jsonl-posts.json"

    first = start_connector(settings, path)
    try:
        await stop_after_checkpoint(first, checkpoint_path, 100, signal.SIGKILL)
    finally:
        first.kill()
        first.wait()
    resumed_at = checkpointed_line(checkpoint_path)
    assert 100 <= resumed_at < LINES

    second = start_connector(settings, path)
    assert await asyncio.to_thread(second.wait, 120) == 0

    records = await read_topic(settings, Topics.RAW, expected=LINES + 100, idle_s=3)
    per_key = Counter(r.key.decode() for r in records)
    assert set(per_key) == {f"file:l{i:03d}" for i in range(LINES)}  # every line at least once
    duplicated_lines = sorted(int(key.removeprefix("file:l")) for key, n in per_key.items() if n > 1)
    assert all(line >= resumed_at for line in duplicated_lines)  # repeats only after the checkpoint...
    assert per_key["file:l000"] == 1 and len(records) < 2 * LINES  # ...so the restart did not begin at line 0
    final = json.loads(checkpoint_path.read_text())["position"]
    assert final["line"] == LINES and final["offset"] == path.stat().st_size

    # through a worker, ClickHouse holds every line exactly once; the re-sent copies are dead-lettered
    worker = await asyncio.to_thread(worker_factory, settings)

    def drained() -> bool:
        handled = worker.metric("pd_sink_rows_total", table="posts") + worker.metric("pd_dlq_total", reason="duplicate_id")
        return handled >= len(records)

    await asyncio.to_thread(wait_until, drained, 120, "the worker handled every record of the file")
    await asyncio.to_thread(worker.stop)
    client = open_chdb()
    assert client.query(f"SELECT count(), uniqExact(id) FROM {settings.clickhouse_database}.posts FINAL").result_rows == [
        (LINES, LINES)
    ]


async def test_sigterm_commits_what_was_acknowledged_so_the_restart_repeats_nothing(make_settings, tmp_path):
    settings = make_settings()
    await ensure_topics(settings)
    path = tmp_path / "posts.jsonl"
    write_posts(path)
    checkpoint_path = settings.data_dir / "checkpoints" / "jsonl-posts.json"

    first = start_connector(settings, path)
    try:
        await stop_after_checkpoint(first, checkpoint_path, 100, signal.SIGTERM)
    finally:
        first.kill()
        first.wait()
    assert first.returncode == 0
    second = start_connector(settings, path)
    assert await asyncio.to_thread(second.wait, 120) == 0

    records = await read_topic(settings, Topics.RAW, expected=LINES, idle_s=3)
    assert sorted(r.key.decode() for r in records) == [f"file:l{i:03d}" for i in range(LINES)]  # each exactly once


async def test_a_fatal_source_error_exits_non_zero_with_the_reason(make_settings, recorded_api):
    settings = make_settings()
    await ensure_topics(settings)
    expired = recorded_bytes("weibo", "error_expired_token.json")
    api = await recorded_api({"/2/statuses/user_timeline.json": lambda request: _reply(expired, 403)})
    run = (
        "import sys; from pipeline.connectors import run_connector; "
        "run_connector('weibo', uid='5617030362', access_token='old', base_url=sys.argv[1])"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        run,
        api.base_url,
        cwd=PROJECT_ROOT,
        env=connector_env(settings),
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    assert "connector weibo-5617030362 stopped" in stderr.decode() and "error_code 21327" in stderr.decode()


async def _reply(body: bytes, status: int) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")
