"""The store/detect worker refits on its timer: forecasts and the account registry land in ClickHouse."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.samples.generate import generate
from pipeline.settings import Topics
from pipeline.testing import post_messages, produce, wait_until
from pipeline.topics import ensure_topics

pytestmark = pytest.mark.integration


def test_the_worker_owning_the_alert_engine_refits(make_settings, worker_factory, open_chdb):
    settings = make_settings(forecast_refit_s=1.0)
    asyncio.run(ensure_topics(settings))
    posts = generate(seed=7, count=600)
    asyncio.run(produce(settings, Topics.RAW, post_messages(posts)))
    worker = worker_factory(settings)
    wait_until(lambda: worker.metric("pd_sink_rows_total", table="posts") >= len(posts), 180, "every post stored")
    wait_until(lambda: worker.metric("pd_sink_rows_total", table="forecasts") > 0, 120, "a refit stored forecasts")
    worker.stop()
    db = settings.clickhouse_database
    client = open_chdb()
    series = client.query(
        f"SELECT DISTINCT watch, key FROM {db}.forecasts WHERE resolution = 'hour' AND metric = 'volume'"
    ).result_rows
    assert ("", "topic:political_affairs") in series and ("hk_mainland_tourists", "all") in series
    newest_post = client.query(f"SELECT toStartOfHour(max(created_at)) FROM {db}.posts").result_rows[0][0]
    assert client.query(f"SELECT max(origin) FROM {db}.forecasts WHERE resolution = 'hour'").result_rows[0][0] == newest_post
    assert client.query(f"SELECT countIf(chinese_official) FROM {db}.account_registry").result_rows[0][0] > 0
