"""SIGKILL in the middle of a stream, restart: exactly one ClickHouse row per unique post."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

import pytest

from pipeline.schemas import RawPost
from pipeline.settings import Topics
from pipeline.testing import produce, wait_until
from pipeline.topics import ensure_topics
from tests.integration.kafka_io import committed_total

pytestmark = pytest.mark.integration

POSTS = 12_000


def stream_of_posts(n: int):
    start = datetime(2015, 2, 8, tzinfo=timezone.utc)
    for i in range(n):
        text = f"Hong Kong mainland tourists protest {i % 50}" if i % 3 else f"中俄经贸合作 第{i}次 会谈 成果丰硕"
        post = RawPost(id=f"p{i}", source="x", text=text, created_at=start + timedelta(seconds=i))
        yield post.key, post.encode()


def quiescent(worker, seconds: float) -> bool:
    """True once the sink's row counter has not moved for `seconds` (and moved at all)."""
    first = worker.metric("pd_sink_rows_total", table="posts")
    time.sleep(seconds)
    return first > 0 and worker.metric("pd_sink_rows_total", table="posts") == first


def test_sigkill_mid_stream_then_restart_gives_one_row_per_post(make_settings, worker_factory, open_chdb):
    settings = make_settings(batch_size=128)
    asyncio.run(ensure_topics(settings))
    asyncio.run(produce(settings, Topics.RAW, stream_of_posts(POSTS)))

    first = worker_factory(settings)
    wait_until(lambda: first.metric("pd_sink_rows_total", table="posts") >= 1000, 120, "first rows stored")
    wait_until(lambda: asyncio.run(committed_total(settings, Topics.RAW, settings.group_id("enrich"))) > 0, 60, "first offsets committed")
    stored_before_kill = first.metric("pd_sink_rows_total", table="posts")
    first.kill()
    assert stored_before_kill < POSTS, "the kill must land mid-stream for this test to mean anything"

    second = worker_factory(settings)
    wait_until(lambda: quiescent(second, 6), 240, "restarted worker drained the stream")
    reconsumed = second.metric("pd_messages_in_total", stage="enrich")
    second.stop()

    client = open_chdb()  # the chdb path the make_settings workers used
    db = settings.clickhouse_database
    assert client.query(f"SELECT count() FROM {db}.posts FINAL").result_rows[0][0] == POSTS
    assert client.query(f"SELECT uniqExact(id) FROM {db}.posts").result_rows[0][0] == POSTS
    # the restart resumed from the committed offsets of posts.raw: it did not start the stream over
    assert 0 < reconsumed < POSTS
