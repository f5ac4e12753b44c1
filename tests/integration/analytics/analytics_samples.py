"""Enriched posts and alerts with neutral defaults, for the analytics integration tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from pipeline.schemas import Alert, AlertState, SamplePost
from tests.factories import enriched_post as make_post  # noqa: F401 - the analytics tests import it from here

DB = "pd"


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
