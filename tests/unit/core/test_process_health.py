"""Every process's /healthz follows its event loop's heartbeat; logs are JSON lines at LOG_LEVEL."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.error
import urllib.request

from pipeline.logs import setup_logging
from pipeline.sinks import metrics
from pipeline.stack import free_port


def status(port: int, path: str) -> int:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5).status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_healthz_fails_once_the_loop_stops_beating_and_metrics_stay_served():
    heartbeat, port = metrics.Heartbeat(max_age_s=0.3), free_port()
    metrics.serve("127.0.0.1", port, heartbeat)

    async def beat_for(seconds: float) -> None:
        task = asyncio.create_task(heartbeat.keep(interval_s=0.05))
        await asyncio.sleep(seconds)
        task.cancel()

    asyncio.run(beat_for(0.5))
    assert status(port, "/healthz") == 200
    time.sleep(0.5)  # nothing beats: the loop is gone
    assert status(port, "/healthz") == 503
    assert b"pd_messages_in_total" in urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()


def test_logs_are_json_lines_with_level_exception_and_extra_fields(capsys):
    setup_logging("INFO", "json")
    log = logging.getLogger("pipeline.test")
    log.debug("not at INFO")
    log.info("bridge posted %d alerts", 3, extra={"alert_id": "a1"})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(e["level"], e["logger"], e["message"]) for e in lines] == [
        ("INFO", "pipeline.test", "bridge posted 3 alerts"), ("ERROR", "pipeline.test", "failed"),
    ]  # fmt: skip
    assert lines[0]["alert_id"] == "a1" and lines[0]["time"].endswith("+00:00")
    assert "ValueError: boom" in lines[1]["exception"]
    setup_logging("WARNING", "text")
