"""Enriched posts and alerts with neutral defaults, for the analytics integration tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from pipeline.schemas import Alert, AlertState, EnrichedPost, PostMetrics, SamplePost

DB = "pd"


def make_post(post_id: str, created_at: datetime, **overrides) -> EnrichedPost:
    """An enriched post with neutral defaults; `pageviews`/`likes`/`looking_at` go into metrics."""
    metrics = PostMetrics(**{k: overrides.pop(k) for k in ("pageviews", "likes", "looking_at") if k in overrides})
    fields = dict(
        id=post_id, source="wechat", account="embassy", author=None, title=f"article {post_id}", url=None,
        created_at=created_at, text=f"text of {post_id}", text_norm=f"text of {post_id}", lang="zh", urls=[],
        mentions=[], hashtags=[], countries=[], organisations=[], content_hash=post_id, is_repost=False,
        repost_of=None, topic="political_affairs", secondary_topic="external_relations", topic_score=0.9,
        sentiment_score=0.0, sentiment_label="neutral", model_path="transformer", metrics=metrics,
        received_at=created_at + timedelta(seconds=1), processed_at=created_at + timedelta(seconds=2),
    )  # fmt: skip
    fields.update(overrides)
    return EnrichedPost(**fields)


def make_alert(alert_id: str, watch: str, state: AlertState, window_end: datetime, **overrides) -> Alert:
    fields = dict(
        id=alert_id, watch=watch, key="RU", severity="warning", state=state,
        window_start=window_end - timedelta(minutes=15), window_end=window_end, observed=12, baseline=3.0,
        negative_share=0.6, baseline_negative_share=0.2, score=4.5,
        sample_posts=[SamplePost(id="p1", text="sample")], top_terms=["sanctions"],
        opened_at=window_end, updated_at=window_end,
    )  # fmt: skip
    fields.update(overrides)
    return Alert(**fields)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)
