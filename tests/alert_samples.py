"""Alert transitions for tests: the sample crisis's alert at its stages."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from pipeline.schemas import Alert, AlertState, SamplePost

T0 = datetime(2015, 2, 8, 6, tzinfo=timezone.utc)


def alert(state: str = "open", severity: str = "warning", hours: int = 1, alert_id: str = "433a15a3f72e9d9fbacc", **fields) -> Alert:
    """The transition `hours` after T0 of an alert opened at T0 + 1 h."""
    values = dict(
        id=alert_id, watch="hk_mainland_tourists", key="all", severity=severity, state=AlertState(state),
        window_start=T0 + timedelta(hours=hours - 1), window_end=T0 + timedelta(hours=hours), observed=25,
        baseline=0.55, negative_share=0.24, baseline_negative_share=None, score=0.94,
        sample_posts=[SamplePost(id="weibo:1", text="内地游客 又来抢购奶粉")], top_terms=["香港", "内地"],
        opened_at=T0 + timedelta(hours=1), updated_at=T0 + timedelta(hours=hours),
    )  # fmt: skip
    values.update(fields)
    return Alert(**values)
