"""A migrated chdb database per test (the in-process ClickHouse engine)."""

from __future__ import annotations

import pytest

from pipeline.sinks.clickhouse import ClickHouseSink, connect, migrate
from tests.integration.analytics.analytics_samples import DB


@pytest.fixture
def sink(tmp_path):
    client = connect(f"chdb://{tmp_path / 'chdb'}")
    migrate(client, DB, ttl_days=30)
    sink = ClickHouseSink(client, DB)
    yield sink
    sink.close()
