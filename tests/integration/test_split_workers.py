"""Enrichment scaled out in a worker of its own: WORKER_STAGES splits the pipeline across processes."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from pipeline.schemas import RawPost
from pipeline.settings import Topics
from pipeline.stack import free_port
from pipeline.testing import post_messages, produce, wait_until
from pipeline.topics import ensure_topics
from tests.integration.kafka_io import read_topic

pytestmark = pytest.mark.integration

POSTS = 1_500


def test_enrich_only_worker_feeds_a_store_and_detect_worker(make_settings, worker_factory, open_chdb):
    settings = make_settings()
    asyncio.run(ensure_topics(settings))
    start = datetime(2015, 2, 8, tzinfo=timezone.utc)
    posts = [
        RawPost(id=f"s{i}", source="weibo", text=f"香港 内地游客 冲突 第{i}次", created_at=start + timedelta(seconds=i))
        for i in range(POSTS)
    ]
    asyncio.run(produce(settings, Topics.RAW, post_messages(posts)))

    # the store/detect worker owns the chdb path: an enrich-only worker that opened it too would fail to start
    storer = worker_factory(settings.model_copy(update={"worker_stages": ("store", "detect")}))
    enricher = worker_factory(
        settings.model_copy(update={"worker_stages": ("enrich",), "metrics_port": free_port(), "web_port": free_port()})
    )
    wait_until(lambda: storer.metric("pd_sink_rows_total", table="posts") >= POSTS, 180, "every post stored")

    assert enricher.metric("pd_messages_in_total", stage="enrich") == POSTS
    assert enricher.metric("pd_messages_in_total", stage="sink") == 0
    assert storer.metric("pd_messages_in_total", stage="enrich") == 0
    assert storer.metric("pd_messages_in_total", stage="alerts") == POSTS  # the alert engine reads every post
    storer.stop()
    raw = asyncio.run(read_topic(settings, Topics.RAW, expected=POSTS))
    enriched = asyncio.run(read_topic(settings, Topics.ENRICHED, expected=POSTS))
    assert {r.key: r.partition for r in enriched} == {r.key: r.partition for r in raw}  # co-partitioned
    assert len({r.partition for r in enriched}) == settings.topic_partitions
    client = open_chdb()
    assert client.query(f"SELECT uniqExact(id) FROM {settings.clickhouse_database}.posts").result_rows[0][0] == POSTS
