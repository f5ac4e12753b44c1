"""`python -m pipeline run` as a newcomer runs it: rows, an alert, the report, and a clean Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from pipeline.settings import PROJECT_ROOT, Settings
from pipeline.stack import free_port
from pipeline.testing import settings_env

pytestmark = pytest.mark.integration


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_run_streams_the_sample_and_stops_cleanly_on_ctrl_c(tmp_path):
    settings = Settings(
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
        data_dir=tmp_path,
        metrics_port=free_port(),
        web_port=free_port(),
        alert_idle_flush_s=3.0,
    )
    env = settings_env(settings)
    run = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run"], cwd=PROJECT_ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(run.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 300
        while not any("Ctrl-C stops" in line for line in lines):
            assert run.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "no summary within 5 minutes:\n" + "".join(lines)
            time.sleep(1)
        output = "".join(lines)
        assert "== 600 enriched posts in ClickHouse" in output, output
        assert "open     hk_mainland_tourists/all" in output, output

        # the worker owns the embedded engine: the report CLI is answered by its dashboard server
        report = subprocess.run(
            [sys.executable, "-m", "pipeline", "report", "--account", "russian_embassy_cn",
             "--from", "2015-02-01", "--to", "2015-03-01"],  # fmt: skip
            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
        )
        assert "russian_embassy_cn" in report.stdout

        os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
        assert run.wait(60) == 0 or run.returncode in (-signal.SIGINT, 130)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    port = int(settings.kafka_bootstrap_servers.rsplit(":", 1)[1])
    assert not listening(port), "the embedded broker outlived Ctrl-C"
    assert not listening(settings.metrics_port) and not listening(settings.web_port)
