"""Dashboard views on the real engine: declared columns, and exact counts under redelivery."""

from __future__ import annotations

import msgspec

from datetime import datetime, timedelta, timezone

import pytest

from pipeline.analytics.views import VIEWS, render_sql, run_view
from pipeline.schemas import AlertState
from tests.integration.analytics.analytics_samples import DB, make_alert, make_post

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
PARAMS = {"start": T0 - timedelta(hours=1), "end": T0 + timedelta(hours=1), "bucket": 600, "watch": "w"}


def _posts():
    """Ten posts in 10:00-10:09: ids 0-3 negative, countries RU on even ids."""
    return [
        make_post(
            f"p{i}", T0 + timedelta(minutes=i), sentiment_label="negative" if i < 4 else "positive",
            sentiment_score=-0.5 if i < 4 else 0.5, countries=["RU"] if i % 2 == 0 else ["CN"],
            processed_at=T0 + timedelta(minutes=i, seconds=3), received_at=T0 + timedelta(minutes=i),
        )
        for i in range(10)
    ]  # fmt: skip


def test_declared_columns_are_the_result_columns(sink):
    sink.insert_posts(_posts())
    sink.insert_alerts([make_alert("a", "w", AlertState.OPEN, T0)])
    for view in VIEWS.values():
        params = {name: PARAMS[name] for name in view.parameters}
        result = sink.client.query(render_sql(view, DB), parameters=params)
        assert tuple(result.column_names) == view.columns, view.name
        assert result.result_rows, f"view {view.name} returned no rows"


def test_redelivered_posts_are_counted_once(sink):
    posts = _posts()
    sink.insert_posts(posts)
    sink.insert_posts(posts[:6])  # at-least-once: a batch delivered again after a rebalance
    sink.insert_posts(posts[2:4])
    same_id_elsewhere = msgspec.structs.replace(posts[0], source="weibo", sentiment_label="positive")
    sink.insert_posts([same_id_elsewhere])  # another post: ids are unique per source only

    (volume,) = run_view(sink.query, DB, "volume_by_topic", **{k: PARAMS[k] for k in ("start", "end", "bucket")})
    assert volume == {"t": T0.replace(tzinfo=None), "topic": "political_affairs", "posts": 11}
    (sentiment,) = run_view(sink.query, DB, "sentiment_by_topic", **{k: PARAMS[k] for k in ("start", "end", "bucket")})
    assert sentiment["negative_share"] == 4 / 11
    countries = run_view(sink.query, DB, "volume_by_country", **{k: PARAMS[k] for k in ("start", "end", "bucket")})
    assert {(row["country"], row["posts"]) for row in countries} == {("RU", 6), ("CN", 5)}
    breakdown = run_view(sink.query, DB, "topic_breakdown", start=PARAMS["start"], end=PARAMS["end"])
    assert [(r["secondary_topic"], r["posts"], r["share"]) for r in breakdown] == [("external_relations", 11, 1.0)]


def test_buckets_split_by_time_and_respect_the_range(sink):
    sink.insert_posts(_posts())
    rows = run_view(sink.query, DB, "volume_by_topic", start=T0 + timedelta(minutes=2), end=T0 + timedelta(minutes=8),
                    bucket=180)  # fmt: skip
    assert [(row["t"].minute, row["posts"]) for row in rows] == [(0, 1), (3, 3), (6, 2)]


def test_alert_views_follow_the_latest_transition(sink):
    sink.insert_alerts([
        make_alert("a1", "w", AlertState.OPEN, T0, severity="warning"),
        make_alert("a1", "w", AlertState.UPDATED, T0 + timedelta(minutes=5), severity="critical", observed=30),
        make_alert("a2", "w", AlertState.OPEN, T0),
        make_alert("a2", "w", AlertState.RESOLVED, T0 + timedelta(minutes=10)),
        make_alert("a3", "other", AlertState.OPEN, T0),
    ])  # fmt: skip
    open_alerts = run_view(sink.query, DB, "open_alerts")
    current = [(a["id"], a["severity"], a["observed"]) for a in open_alerts]
    assert current == [("a1", "critical", 30), ("a3", "warning", 12)]
    detail = run_view(sink.query, DB, "watch_detail", **{k: PARAMS[k] for k in ("start", "end", "watch")})
    assert {(row["id"], row["state"]) for row in detail} == {("a1", "open"), ("a1", "updated"), ("a2", "open"),
                                                             ("a2", "resolved")}  # fmt: skip


def test_aggregates_expire_with_the_configured_ttl(open_chdb):
    from pipeline.sinks.clickhouse import migrate

    client = open_chdb("ttl")
    migrate(client, "ttl_db", ttl_days=7)
    ddl = dict(client.query("SELECT name, create_table_query FROM system.tables WHERE database = 'ttl_db'").result_rows)
    for table in ("posts_by_minute", "posts_by_country_minute", "processing_by_minute"):
        assert "TTL inserted_at + toIntervalDay(7)" in ddl[table], ddl[table]
