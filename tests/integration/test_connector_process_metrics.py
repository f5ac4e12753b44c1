"""A connector process (`python -m pipeline connect ...`) serves its pd_connector_* metrics and
/healthz, and logs JSON lines."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
from datetime import datetime, timezone

import pytest

from pipeline.schemas import RawPost
from pipeline.settings import PROJECT_ROOT
from pipeline.stack import free_port
from pipeline.testing import WorkerProcess, settings_env, wait_until
from pipeline.topics import ensure_topics

pytestmark = pytest.mark.integration


def test_the_push_endpoint_process_serves_metrics_and_healthz(make_settings, tmp_path):
    settings = make_settings(log_level="INFO")
    asyncio.run(ensure_topics(settings))
    push_port = free_port()
    env = {**settings_env(settings), "PUSH_TOKEN": "a-push-token-for-the-test-0123456789"}
    log = tmp_path / "push.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "connect", "http", f"port={push_port}"],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"),
    )  # fmt: skip
    probe = WorkerProcess(settings, log)  # reads the process's /metrics
    probe.process = process
    try:
        wait_until(lambda: _answers(settings.metrics_port), 60, "connector /healthz")
        post = RawPost(id="1", source="x", text="Hong Kong", created_at=datetime.now(timezone.utc))
        body = json.dumps({"posts": [json.loads(post.encode())]}).encode()
        wait_until(lambda: _answers(push_port, "/v1/posts", body), 30, "push endpoint accepts the batch")
        wait_until(lambda: probe.metric("pd_connector_posts_produced_total", connector="http") == 1, 30, "metric")
    finally:
        process.terminate()
        process.wait(30)
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert entries and all({"time", "level", "logger", "message"} <= set(e) for e in entries)


def _answers(port: int, path: str = "/healthz", body: bytes | None = None) -> bool:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers={"Authorization": "Bearer a-push-token-for-the-test-0123456789"})
    try:
        return urllib.request.urlopen(request, timeout=5).status in (200, 202)
    except OSError:
        return False
