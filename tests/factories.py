"""The one factory for enriched posts in tests: every field of the `enriched_post` v1 schema with a
neutral default, so a test names only what it is about (and a new field is added here once)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from pipeline.schemas import EnrichedPost, PostMetrics

T0 = datetime(2015, 2, 8, tzinfo=timezone.utc)
METRIC_FIELDS = ("pageviews", "likes", "reposts", "comments", "looking_at")


def enriched_post(post_id: str = "p0", created_at: datetime = T0, **overrides) -> EnrichedPost:
    """`pageviews`, `likes`, ... go into `metrics`; any other keyword replaces a field."""
    metrics = PostMetrics(**{k: overrides.pop(k) for k in METRIC_FIELDS if k in overrides})
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
