"""Backtests: run the watches over a historical range and score the alerts against known incidents.

The alerts come from the same `AlertEngine` the detect stage runs, fed the range's enriched posts
in event-time order (ties by post id) and ended the way a quiet live stream ends, so a backtest
over a replayed range reproduces the live run's alerts, and the same input gives the same alerts
on every run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict

from pipeline.alerting.engine import AlertEngine
from pipeline.alerting.watches import Watch
from pipeline.replay import select_range
from pipeline.schemas import Alert, AlertState, EnrichedPost, decode
from pipeline.settings import Settings, Topics


class Incident(BaseModel):
    """A labelled crisis: alerts of `watch` (and `key`, if given) between start and end detect it.

    `reference` is when it became known by other means (e.g. the first official statement); an
    alert's lead time is how long before that it was emitted.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    watch: str
    key: str | None = None
    start: AwareDatetime
    end: AwareDatetime
    reference: AwareDatetime


def load_incidents(path: Path) -> list[Incident]:
    return [Incident.model_validate(item) for item in yaml.safe_load(path.read_text(encoding="utf-8"))["incidents"]]


def run_watches(posts: Iterable[EnrichedPost], watches: Sequence[Watch]) -> list[Alert]:
    """All alert transitions the watches produce over `posts`, as the live agent would emit them."""
    engine = AlertEngine(watches)
    payloads = []
    for post in sorted(posts, key=lambda p: (p.created_at, p.id)):
        payloads += engine.process(post)
    payloads += engine.go_quiet(math.inf)  # the stream ends quiet, as the live idle flush ends it
    return [Alert.from_payload(p) for p in payloads]


async def read_enriched(settings: Settings, start: datetime, end: datetime) -> list[EnrichedPost]:
    """The namespace's enriched posts whose record timestamp (= post time) is in [start, end)."""
    selected, _ = await select_range(settings, Topics.ENRICHED, start, end)
    posts = {}
    for record in selected:  # at-least-once upstream: a post may be on the topic twice
        post = decode(record.value, EnrichedPost)
        posts[(post.source, post.id)] = post
    return list(posts.values())


@dataclass(frozen=True)
class Detection:
    incident: Incident
    alert: Alert | None

    @property
    def lead_time_s(self) -> float | None:
        """Seconds between the alert's emission (its window end) and the incident's reference time."""
        return None if self.alert is None else (self.incident.reference - self.alert.window_end).total_seconds()


@dataclass(frozen=True)
class BacktestScore:
    alerts_opened: int
    true_alerts: int
    detections: tuple[Detection, ...]

    @property
    def precision(self) -> float | None:
        return self.true_alerts / self.alerts_opened if self.alerts_opened else None

    @property
    def recall(self) -> float | None:
        if not self.detections:
            return None
        return sum(d.alert is not None for d in self.detections) / len(self.detections)


def _covers(incident: Incident, alert: Alert) -> bool:
    return (
        alert.watch == incident.watch
        and (incident.key is None or alert.key == incident.key)
        and alert.window_start < incident.end
        and alert.window_end > incident.start
    )


def score(alerts: Sequence[Alert], incidents: Sequence[Incident]) -> BacktestScore:
    """Precision over opened alerts, recall over incidents, lead time of each incident's first alert."""
    opened = sorted((a for a in alerts if a.state is AlertState.OPEN), key=lambda a: a.window_end)
    detections = tuple(Detection(i, next((a for a in opened if _covers(i, a)), None)) for i in incidents)
    true_alerts = sum(any(_covers(i, a) for i in incidents) for a in opened)
    return BacktestScore(alerts_opened=len(opened), true_alerts=true_alerts, detections=detections)


def render(alerts: Sequence[Alert], result: BacktestScore) -> str:
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.0%}"

    lines = [f"{len(alerts)} alert transitions:"]
    lines += [
        f"  {a.window_end:%Y-%m-%d %H:%M} {a.state.value:<8} [{a.severity}] {a.watch}/{a.key} "
        f"observed {a.observed} baseline {a.baseline} negative {a.negative_share:.0%} id {a.id}"
        for a in alerts
    ]
    lines.append(
        f"precision {pct(result.precision)} ({result.true_alerts}/{result.alerts_opened} opened alerts match an incident), "
        f"recall {pct(result.recall)} ({sum(d.alert is not None for d in result.detections)}/{len(result.detections)} incidents)"
    )
    for d in result.detections:
        lead = "missed" if d.lead_time_s is None else f"lead time {d.lead_time_s / 3600:+.1f} h (alert {d.alert.id})"
        lines.append(f"  incident {d.incident.name}: {lead}")
    return "\n".join(lines) + "\n"
