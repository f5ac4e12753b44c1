"""Fixtures that start the real embedded broker (tansu) and run real workers against chdb."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from pipeline.settings import Settings
from pipeline.stack import EmbeddedStack, free_port
from pipeline.testing import WorkerProcess


@pytest.fixture(scope="session")
def broker(tmp_path_factory) -> Iterator[str]:
    """bootstrap address of a tansu broker shared by the session's tests (memory storage: each test has
    a namespace of its own; the fault suite runs the persistent default on brokers of its own)."""
    port = free_port()
    data_dir = tmp_path_factory.mktemp("stack")
    settings = Settings(kafka_bootstrap_servers=f"127.0.0.1:{port}", data_dir=data_dir)
    with EmbeddedStack(settings, persistent=False):
        yield settings.kafka_bootstrap_servers


@pytest.fixture
def make_settings(broker, tmp_path) -> Callable[..., Settings]:
    """Settings in a namespace of their own (topic prefix, consumer group, chdb path) on the shared broker."""

    def make(**overrides) -> Settings:
        namespace = f"t{uuid.uuid4().hex[:8]}."
        values = dict(
            kafka_bootstrap_servers=broker,
            topic_prefix=namespace,
            app_id=f"pd-{namespace.rstrip('.')}",
            data_dir=tmp_path,
            clickhouse_url=f"chdb://{tmp_path / 'chdb'}",
            metrics_port=free_port(),
            web_port=free_port(),
            enricher="lexical",
            topic_partitions=2,
        )
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def worker_factory(tmp_path) -> Iterator[Callable[[Settings], WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(settings: Settings) -> WorkerProcess:
        worker = WorkerProcess(settings, tmp_path / f"worker-{len(started)}.log").start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
