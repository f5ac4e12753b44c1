"""Backtest scoring against labelled incidents: precision over alerts, recall and lead time per incident."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from pipeline.backtest import Incident, score
from pipeline.schemas import Alert, AlertState

T0 = datetime(2015, 2, 8, tzinfo=timezone.utc)


def alert(watch: str, hour: int, state: str = "open", key: str = "all") -> Alert:
    start = T0 + timedelta(hours=hour)
    return Alert(
        id=f"{watch}-{hour}", watch=watch, key=key, severity="warning", state=AlertState(state), window_start=start,
        window_end=start + timedelta(hours=1), observed=30, baseline=5.0, negative_share=0.6,
        baseline_negative_share=0.2, score=0.9, sample_posts=[], top_terms=[], opened_at=start, updated_at=start,
    )  # fmt: skip


def incident(name: str, watch: str, start_h: int, end_h: int, reference_h: int, key: str | None = None) -> Incident:
    hours = lambda h: T0 + timedelta(hours=h)  # noqa: E731
    return Incident(name=name, watch=watch, key=key, start=hours(start_h), end=hours(end_h), reference=hours(reference_h))


def test_precision_recall_and_lead_time():
    alerts = [
        alert("hk", 5),  # inside the HK incident: true, first -> lead time 20 - 6 = 14 h
        alert("hk", 7),  # also inside: true, not the first
        alert("hk", 9, state="resolved"),  # transitions other than open are not counted
        alert("hk", 40),  # no incident: false alarm
        alert("energy", 3),  # other watch, no incident
    ]
    incidents = [incident("hk", "hk", 4, 12, 20), incident("missed", "energy", 30, 34, 35)]
    result = score(alerts, incidents)
    assert result.alerts_opened == 4 and result.true_alerts == 2
    assert result.precision == 0.5
    assert result.recall == 0.5
    hk, missed = result.detections
    assert hk.alert.id == "hk-5" and hk.lead_time_s == 14 * 3600
    assert missed.alert is None and missed.lead_time_s is None


def test_incident_key_restricts_matching_alerts():
    alerts = [alert("hk", 5, key="country:CN"), alert("hk", 6, key="all")]
    (detection,) = score(alerts, [incident("hk", "hk", 4, 12, 20, key="all")]).detections
    assert detection.alert.id == "hk-6"


def test_no_alerts_no_incidents_is_undefined_not_perfect():
    result = score([], [])
    assert result.precision is None and result.recall is None
