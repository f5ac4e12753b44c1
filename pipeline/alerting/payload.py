"""The alert payload (plain dict) published on the `alerts` topic; the lead's schema wraps it."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pipeline.alerting.lifecycle import AlertTransition

MAX_SAMPLES = 5
MAX_TERMS = 10


def _iso(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def build_alert(transition: AlertTransition) -> dict[str, Any]:
    """All times are event time (window bounds), never wall-clock, so replays are identical."""
    window = transition.window
    return {
        "id": transition.alert_id,
        "watch": window.watch,
        "key": window.key,
        "severity": transition.severity,
        "state": transition.state,
        "window_start": _iso(window.window_start),
        "window_end": _iso(window.window_end),
        "observed": window.observed,
        "baseline": _rounded(window.baseline),
        "negative_share": _rounded(window.negative_share),
        "baseline_negative_share": _rounded(window.baseline_negative_share),
        "score": _rounded(window.score),
        "sample_post_ids": list(window.sample_post_ids[:MAX_SAMPLES]),
        "sample_texts": list(window.sample_texts[:MAX_SAMPLES]),
        "top_terms": [[term, count] for term, count in window.top_terms[:MAX_TERMS]],
        "opened_at": _iso(transition.opened_at),
        "updated_at": _iso(transition.updated_at),
    }
