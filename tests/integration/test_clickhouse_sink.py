"""The sink against the real ClickHouse engine (chdb): migrations, whole-batch inserts, idempotence."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import msgspec
import orjson
import pytest

from pipeline.schemas import Alert, AlertState, EnrichedPost, PostMetrics, StoryDetails, decode
from pipeline.sinks.clickhouse import ClickHouseSink, MigrationLocked, load_migrations, migrate, migration_lock
from tests.factories import enriched_post

pytestmark = pytest.mark.integration

T0 = datetime(2015, 2, 8, tzinfo=timezone.utc)


def post(i: int, sentiment: float = 0.0, processed_at: datetime = T0) -> EnrichedPost:
    return enriched_post(
        f"p{i}", T0 + timedelta(minutes=i), source="weibo", account="acct", title=None, text=f"text {i}",
        text_norm=f"text {i}", countries=["CN", "HK"], content_hash=f"h{i}", sentiment_score=sentiment,
        model_path="lexical", pageviews=i, received_at=processed_at, processed_at=processed_at,
    )


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
    assert "schema_migrations_lock" not in tables  # released


def test_migrations_wait_for_the_lock_and_break_a_stale_one(open_chdb):
    client = open_chdb()
    client.command("CREATE DATABASE pd")
    with migration_lock(client, "pd"):  # another migrator is at work
        with pytest.raises(MigrationLocked, match="schema_migrations_lock held by"):
            migrate(client, "pd", 30, lock_wait_s=0.5)
        assert "schema_migrations" not in {row[0] for row in client.query("SHOW TABLES FROM pd").result_rows}
    client.command("CREATE TABLE pd.schema_migrations_lock (holder String) ENGINE = Memory COMMENT 'dead:1'")
    with migration_lock(client, "pd", wait_s=0.5, stale_after_s=-1):  # left by a migrator that died
        assert client.query("SELECT comment FROM system.tables WHERE name = 'schema_migrations_lock'").result_rows != [("dead:1",)]
    assert migrate(client, "pd", 30) == [m.version for m in load_migrations()]


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


def test_messages_land_in_posts_field_by_field(sink):
    full = msgspec.structs.replace(post(1), **{
        "author": "作者", "title": "标题", "url": "https://e.org/1", "urls": ["https://e.org/x"], "mentions": ["@a"],
        "hashtags": ["光复屯门"], "organisations": ["UN"], "is_repost": True, "repost_of": "p0",
        "sentiment_score": -0.75, "sentiment_label": "negative", "model_path": "cache",
        "metrics": PostMetrics(pageviews=10, likes=3, reposts=2, comments=1, looking_at=4),
        "created_at": T0 + timedelta(milliseconds=1234), "processed_at": T0 + timedelta(seconds=2),
    })  # fmt: skip
    sink.insert_encoded_posts([full.encode(), post(2).encode()])
    columns = [
        "id", "source", "account", "author", "title", "url", "created_at", "text", "text_norm", "lang", "urls",
        "mentions", "hashtags", "countries", "organisations", "content_hash", "is_repost", "repost_of", "topic",
        "secondary_topic", "topic_score", "sentiment_score", "sentiment_label", "model_path", "pageviews", "likes",
        "reposts", "comments", "looking_at", "processed_at",
    ]  # fmt: skip
    rows = sink.query(f"SELECT {', '.join(columns)} FROM pd.posts ORDER BY id")
    stored = [dict(zip(columns, row)) for row in rows]
    utc = lambda value: value.replace(tzinfo=timezone.utc)  # noqa: E731 - chdb returns naive UTC
    for got, sent in zip(stored, [full, post(2)]):
        expected = {k: v for k, v in msgspec.structs.asdict(sent).items() if k not in ("schema", "v", "metrics", "received_at")}
        expected.update(msgspec.structs.asdict(sent.metrics))
        for optional in ("account", "author", "title", "url", "repost_of"):
            expected[optional] = expected[optional] or ""  # null becomes '' in posts
        got.update(created_at=utc(got["created_at"]), processed_at=utc(got["processed_at"]))
        got.update(topic_score=pytest.approx(got["topic_score"]), sentiment_score=pytest.approx(got["sentiment_score"]))
        assert got == expected


def test_the_engine_refuses_the_values_the_schema_refuses(sink):
    """What the schema rejects in a message with the right keys, the landing table rejects too."""
    from pipeline.schemas import ValidationError, decode
    from pipeline.sinks import DataRejected

    good = orjson.loads(post(1).encode())
    variants = {
        "topic_score": "high", "text": None, "sentiment_score": 1.5, "sentiment_label": "angry",
        "model_path": "oracle", "is_repost": "maybe", "urls": "https://e.org", "created_at": "yesterday",
        "metrics": {"pageviews": -1}, "countries": [1, None], "v": 2, "schema": "raw_post",
    }  # fmt: skip
    for field, bad_value in variants.items():
        message = orjson.dumps({**good, field: bad_value})
        with pytest.raises(ValidationError):
            decode(message, EnrichedPost)
        with pytest.raises(DataRejected):
            sink.insert_encoded_posts([message])
    with pytest.raises(DataRejected):  # an unknown field
        sink.insert_encoded_posts([orjson.dumps({**good, "views": 1})])
    assert sink.query("SELECT count() FROM pd.posts")[0][0] == 0


def test_alert_kinds_keep_their_details(sink):
    """alert v2: a story's own block lands in `details` as the JSON the topic carries; a surge's is empty."""
    common = dict(
        severity="warning", state=AlertState.OPEN, window_start=T0, window_end=T0 + timedelta(minutes=5),
        observed=40, baseline=3.0, negative_share=0.5, baseline_negative_share=0.2, score=0.8, sample_posts=[],
        top_terms=["#香港#"], opened_at=T0, updated_at=T0,
    )  # fmt: skip
    story = StoryDetails(terms=["香港"], hashtags=["#香港#"], countries=["HK"], languages=["zh"], mean_sentiment=-0.4)
    sink.insert_alerts([
        Alert(id="s1", kind="story", watch="stories", key="香港", **common, story=story),
        Alert(id="a1", watch="hk_mainland_tourists", key="all", scale="5m", **common),
    ])  # fmt: skip
    rows = dict(sink.query("SELECT id, (kind, scale, details) FROM pd.alerts FINAL ORDER BY id"))
    assert rows["a1"] == ("surge", "5m", "")
    kind, scale, details = rows["s1"]
    assert (kind, scale) == ("story", "")
    assert decode(details.encode(), StoryDetails) == story
