"""The sink against the real ClickHouse engine (chdb): migrations, whole-batch inserts, idempotence."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from pipeline.schemas import EnrichedPost, PostMetrics
from pipeline.sinks.clickhouse import ClickHouseSink, load_migrations, migrate

pytestmark = pytest.mark.integration

T0 = datetime(2015, 2, 8, tzinfo=timezone.utc)


def post(i: int, sentiment: float = 0.0, processed_at: datetime = T0) -> EnrichedPost:
    return EnrichedPost(
        id=f"p{i}", source="weibo", account="acct", author=None, title=None, url=None,
        created_at=T0 + timedelta(minutes=i), text=f"text {i}", text_norm=f"text {i}", lang="zh", urls=[],
        mentions=[], hashtags=[], countries=["CN", "HK"], organisations=[], content_hash=f"h{i}", is_repost=False,
        repost_of=None, topic="political_affairs", secondary_topic="external_relations", topic_score=0.9,
        sentiment_score=sentiment, sentiment_label="neutral", model_path="lexical", metrics=PostMetrics(pageviews=i),
        received_at=processed_at, processed_at=processed_at,
    )  # fmt: skip


@pytest.fixture
def sink(open_chdb):
    client = open_chdb()
    migrate(client, "pd", ttl_days=30)
    return ClickHouseSink(client, "pd")


def test_migrations_apply_once_in_order(open_chdb):
    client = open_chdb()
    versions = [m.version for m in load_migrations()]
    assert migrate(client, "pd", 30) == versions == sorted(versions)
    assert migrate(client, "pd", 30) == []
    tables = {row[0] for row in client.query("SHOW TABLES FROM pd").result_rows}
    assert {"posts", "alerts", "alert_engine_state", "schema_migrations"} <= tables


def test_a_batch_is_one_insert_and_redelivery_is_idempotent(sink):
    sink.insert_posts([post(i) for i in range(1000)])
    parts = sink.query("SELECT count() FROM system.parts WHERE database = 'pd' AND table = 'posts' AND active")
    assert parts[0][0] == 1  # one insert, one part: never a row per insert

    later = T0 + timedelta(hours=1)
    sink.insert_posts([post(i, sentiment=-0.5, processed_at=later) for i in range(500)])  # redelivered half
    assert sink.query("SELECT count() FROM pd.posts FINAL")[0][0] == 1000
    # the newest processing wins
    assert sink.query("SELECT sentiment_score FROM pd.posts FINAL WHERE id = 'p3'")[0][0] == -0.5


def test_alert_engine_state_round_trip(sink):
    assert sink.load_alert_state("ns") is None
    sink.save_alert_state("ns", 10, b'{"a": 1}')
    sink.save_alert_state("ns", 25, b'{"a": 2}')
    sink.save_alert_state("other", 99, b"{}")
    assert sink.load_alert_state("ns") == (25, b'{"a": 2}')
