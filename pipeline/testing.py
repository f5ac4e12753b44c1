"""Drive a real worker process from integration tests and benchmarks, and produce to its topics."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from pipeline.kafka import create_producer
from pipeline.schemas import EnrichedPost, RawPost
from pipeline.settings import PROJECT_ROOT, Settings
from pipeline.stack import wait_for_port


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process build exactly these settings."""
    env = dict(os.environ)
    for name, value in settings.model_dump(exclude_none=True).items():
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[name.upper()] = ",".join(value) if isinstance(value, tuple) else str(value)
    return env


class WorkerProcess:
    """`python -m pipeline worker` (or another command serving /metrics) as a child process, the
    way operators run it."""

    def __init__(self, settings: Settings, log_path: Path, module: str = "pipeline", command: str = "worker"):
        """`module` is run as `python -m <module> <command>` (a benchmark may bring its own entry
        point; the Alertmanager bridge is the command ``bridge``)."""
        self.settings = settings
        self.log_path = log_path
        self.module = module
        self.command = command
        self.process: subprocess.Popen | None = None

    def start(self) -> "WorkerProcess":
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, self.command],
            cwd=PROJECT_ROOT,
            env=settings_env(self.settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        try:
            wait_for_port("127.0.0.1", self.settings.metrics_port, 120, self.process)
        except (RuntimeError, TimeoutError) as exc:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.command} did not start: {exc}\n--- {self.log_path} ---\n{tail}") from exc
        return self

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout_s: float = 60) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Freeze the worker (SIGSTOP) while a backlog is produced; it resumes with its group joined
        and its models warm, so a benchmark times the processing and not the producer. Keep the
        pause well under the consumer session timeout."""
        os.killpg(self.process.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.killpg(self.process.pid, signal.SIGCONT)

    def metric(self, name: str, **labels: str) -> float:
        """Current value of one sample on the worker's /metrics (0 when not exported yet)."""
        body = urllib.request.urlopen(f"http://127.0.0.1:{self.settings.metrics_port}/metrics", timeout=5).read()
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return sample.value
        return 0.0


def wait_until(predicate: Callable[[], bool], timeout_s: float, message: str, interval_s: float = 0.5) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s: {message}")


Message = tuple[bytes | None, bytes] | tuple[bytes | None, bytes, int]
"""(key, value) or (key, value, CreateTime in ms)."""


async def produce(settings: Settings, topic: str, messages: Iterable[Message]) -> int:
    """Send the messages to a topic of the namespace and wait until the broker acknowledged all."""
    producer = create_producer(settings, client_id="pd-testing", linger_ms=20)
    await producer.start()
    count = 0
    try:
        for key, value, *stamp in messages:
            await producer.send(settings.topic(topic), value=value, key=key, timestamp_ms=stamp[0] if stamp else None)
            count += 1
        await producer.flush()
    finally:
        await producer.stop()
    return count


def post_messages(posts: Sequence[RawPost | EnrichedPost]) -> list[Message]:
    """Posts as connectors send them: key source:id, CreateTime = the post's own time."""
    return [(p.key, p.encode(), int(p.created_at.timestamp() * 1000)) for p in posts]
