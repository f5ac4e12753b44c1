"""A migrated chdb database per test (the in-process ClickHouse engine)."""

from __future__ import annotations

import pytest

from pipeline.sinks.clickhouse import ClickHouseSink, migrate

DB = "pd"


@pytest.fixture
def sink(open_chdb):
    client = open_chdb()
    migrate(client, DB, ttl_days=3650)
    return ClickHouseSink(client, DB)
