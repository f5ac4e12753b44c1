"""A migrated chdb database per test (the in-process ClickHouse engine)."""

from __future__ import annotations

import pytest

from pipeline.sinks.clickhouse import ClickHouseSink, migrate
from tests.integration.analytics.analytics_samples import DB


@pytest.fixture
def sink(open_chdb):
    client = open_chdb()
    migrate(client, DB, ttl_days=30)
    return ClickHouseSink(client, DB)
