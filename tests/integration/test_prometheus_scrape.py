"""Debian's Prometheus scrapes a running worker; a pipeline metric comes back through its HTTP API."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from datetime import datetime, timezone

import pytest

from pipeline.schemas import RawPost
from pipeline.settings import Topics
from pipeline.stack import free_port, wait_for_port
from pipeline.testing import post_messages, produce, wait_until
from pipeline.topics import ensure_topics

pytestmark = pytest.mark.integration

PROMETHEUS = shutil.which("prometheus")


def query(port: int, promql: str) -> list:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    body = json.loads(urllib.request.urlopen(url, timeout=5).read())
    assert body["status"] == "success"
    return body["data"]["result"]


def ready(port: int) -> bool:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=5).status == 200
    except OSError:  # 503 while the TSDB opens, refused before that
        return False


def test_prometheus_scrapes_the_worker(make_settings, worker_factory, tmp_path):
    settings = make_settings()
    asyncio.run(ensure_topics(settings))
    worker_factory(settings)
    posts = [RawPost(id=f"m{i}", source="x", text=f"Hong Kong post {i}", created_at=datetime.now(timezone.utc)) for i in range(25)]
    asyncio.run(produce(settings, Topics.RAW, post_messages(posts)))

    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: pd-monitor\n    static_configs: [{{targets: ['127.0.0.1:{settings.metrics_port}']}}]\n"
    )
    port = free_port()
    prometheus = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],  # fmt: skip
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port("127.0.0.1", port, 30, prometheus)
        wait_until(lambda: ready(port), 60, "prometheus ready")

        def scraped_all() -> bool:
            result = query(port, 'pd_messages_in_total{stage="enrich"}')
            return bool(result) and float(result[0]["value"][1]) == len(posts)

        wait_until(scraped_all, 60, "prometheus reports the 25 posts the worker consumed")
        assert query(port, 'up{job="pd-monitor"}')[0]["value"][1] == "1"
    finally:
        prometheus.terminate()
        prometheus.wait(10)
