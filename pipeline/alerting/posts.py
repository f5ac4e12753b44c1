"""Read the few post fields alerting needs from either a dict or an object (e.g. `EnrichedPost`).

Alerting runs on live enriched posts, on ClickHouse rows in backtests and on hand-made dicts in
tests; accepting any of them through one accessor keeps the rest of the package shape-agnostic.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

FIELDS = ("id", "created_at", "text", "text_norm", "lang", "topic", "secondary_topic", "countries",
          "sentiment_score", "sentiment_label")  # fmt: skip
"""Every post field alerting reads (watches, windows, samples); the detect stage decodes only these."""

NEGATIVE_SCORE_THRESHOLD = -0.25
"""Sentiment score below which a post counts as negative when it carries no label."""


def field(post: Any, name: str, default: Any = None) -> Any:
    if _is_mapping(type(post)):
        value = post.get(name, default)
    else:
        value = getattr(post, name, default)
    return default if value is None else value


@functools.cache
def _is_mapping(kind: type) -> bool:
    """Cached per type: the Mapping ABC check costs ~0.3 us, and alerting reads fields per post per watch."""
    return issubclass(kind, Mapping)


def text(post: Any) -> str:
    """Normalised text when the normaliser provided it (`text_norm`), else `text`; lower-cased."""
    return str(field(post, "text_norm") or field(post, "text", "")).lower()


def timestamp(post: Any) -> float:
    """Event time (`created_at`) as epoch seconds; naive datetimes are taken as UTC."""
    value = field(post, "created_at")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return timestamp({"created_at": datetime.fromisoformat(value.replace("Z", "+00:00"))})
    raise ValueError(f"post {field(post, 'id')!r} has no usable created_at: {value!r}")


def sentiment(post: Any) -> float:
    return float(field(post, "sentiment_score", 0.0))


def is_negative(post: Any) -> bool:
    label = field(post, "sentiment_label")
    if label is not None:
        return label == "negative"
    return sentiment(post) < NEGATIVE_SCORE_THRESHOLD
