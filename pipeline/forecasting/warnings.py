"""Forecast warnings: a watch's forecast crossing its static threshold within the horizon.

A warning (alert kind ``forecast``, severity ``info``: below any observed surge) opens when the
upper 80 % bound of a forecast step reaches the watch's static threshold — `static.min_count`
for volume, `static.negative_share` for the negative share (only at steps whose forecast volume
reaches `static.negative_min_count`, as the observed rule requires) — at the forecast resolution
equal to the watch's window (1 h or 1 d; a watch with another window gets no forecast warnings).

One warning per crossing episode: the id hashes the watch, key, metric and the origin of the refit
that first saw the crossing, so a replay gives the same ids. While later refits still cross, the
warning is updated only when the first crossing step moves; the first refit that no longer
crosses resolves it. The open episodes are read back from ClickHouse (`alerts`), so a restarted
worker continues them instead of opening duplicates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
from pipeline.alerting.lifecycle import alert_id
from pipeline.alerting.watches import Watch
from pipeline.forecasting.model import MODEL_NAME, Forecast, Resolution
from pipeline.schemas import Alert, AlertState, ForecastDetails, decode

Query = Callable[[str, dict], list[tuple]]
Episode = tuple[str, str, str]
"""(watch, key, metric)."""


@dataclass(frozen=True)
class SeriesForecast:
    """A watch key's forecasts at one resolution, with what was last observed."""

    watch: Watch
    key: str
    resolution: Resolution
    origin: datetime
    volume: Forecast
    negative_share: Forecast
    last_posts: int
    last_negative_share: float


@dataclass(frozen=True)
class OpenWarning:
    id: str
    opened_at: datetime
    details: ForecastDetails


def threshold_resolution(watch: Watch) -> str | None:
    return {3600: "hour", 86400: "day"}.get(watch.rules.window)


def first_crossing(upper_80: np.ndarray, threshold: float, eligible: np.ndarray | None = None) -> int | None:
    crossing = upper_80 >= threshold
    if eligible is not None:
        crossing &= eligible
    hits = np.flatnonzero(crossing)
    return int(hits[0]) if len(hits) else None


def _details(metric: str, f: Forecast, step: int, threshold: float, origin: datetime, resolution: Resolution) -> ForecastDetails:
    return ForecastDetails(
        metric=metric,
        horizon_end=origin + timedelta(seconds=resolution.seconds * (step + 1)),
        forecast=round(float(f.mean[step]), 4),
        upper_80=round(float(f.upper_80[step]), 4),
        upper_95=round(float(f.upper_95[step]), 4),
        threshold=threshold,
        model=MODEL_NAME,
    )


def crossings(series: SeriesForecast) -> dict[str, ForecastDetails | None]:
    """Per metric the watch has a static threshold for: the first crossing step, or None."""
    static, out = series.watch.rules.static, {}
    if static.min_count is not None:
        step = first_crossing(series.volume.upper_80, static.min_count)
        out["volume"] = None if step is None else _details(
            "volume", series.volume, step, static.min_count, series.origin, series.resolution)  # fmt: skip
    if static.negative_share is not None:
        step = first_crossing(series.negative_share.upper_80, static.negative_share,
                              series.volume.mean >= static.negative_min_count)  # fmt: skip
        out["negative_share"] = None if step is None else _details(
            "negative_share", series.negative_share, step, static.negative_share, series.origin, series.resolution)  # fmt: skip
    return out


def _peak(metric: str, f: Forecast, threshold: float, origin: datetime, resolution: Resolution) -> ForecastDetails:
    """The step closest to the threshold, for a warning that resolves."""
    return _details(metric, f, int(np.argmax(f.upper_80)), threshold, origin, resolution)


_OPEN_WARNINGS_SQL = """
SELECT id, argMax(watch, updated_at), argMax(key, updated_at), argMax(state, updated_at),
       min(opened_at), argMax(details, updated_at)
FROM {db}.alerts
WHERE kind = 'forecast'
GROUP BY id
HAVING argMax(state, updated_at) != 'resolved'"""


def open_warnings(query: Query, db: str) -> dict[Episode, OpenWarning]:
    out = {}
    for warning_id, watch, key, _state, opened_at, details in query(_OPEN_WARNINGS_SQL.replace("{db}", db), {}):
        decoded = decode(details.encode(), ForecastDetails)
        opened = opened_at.replace(tzinfo=timezone.utc) if opened_at.tzinfo is None else opened_at
        out[(watch, key, decoded.metric)] = OpenWarning(warning_id, opened, decoded)
    return out


def transitions(
    forecasts: Iterable[SeriesForecast], open_now: dict[Episode, OpenWarning], origin: datetime
) -> list[Alert]:
    """The warning transitions of the refit at `origin`, in a stable order. An open warning whose
    series is no longer forecast (its watch or threshold removed, its key gone quiet) resolves."""
    alerts: list[Alert] = []
    seen: set[Episode] = set()
    for series in forecasts:
        for metric, crossing in crossings(series).items():
            episode = (series.watch.name, series.key, metric)
            seen.add(episode)
            current = open_now.get(episode)
            if crossing is not None and current is None:
                warning_id = alert_id(series.watch.name, f"{series.key}\x1fforecast:{metric}", int(series.origin.timestamp()))
                alerts.append(_alert(series, warning_id, AlertState.OPEN, series.origin, crossing))
            elif crossing is not None and crossing.horizon_end != current.details.horizon_end:
                alerts.append(_alert(series, current.id, AlertState.UPDATED, current.opened_at, crossing))
            elif crossing is None and current is not None:
                threshold = current.details.threshold
                f = series.volume if metric == "volume" else series.negative_share
                peak = _peak(metric, f, threshold, series.origin, series.resolution)
                alerts.append(_alert(series, current.id, AlertState.RESOLVED, current.opened_at, peak))
    for (watch, key, _metric), current in sorted(open_now.items()):
        if (watch, key, _metric) not in seen:
            alerts.append(Alert(
                id=current.id, kind="forecast", watch=watch, key=key, severity="info", state=AlertState.RESOLVED,
                window_start=origin, window_end=origin, observed=0, baseline=None, negative_share=0.0,
                baseline_negative_share=None, score=0.0, sample_posts=[], top_terms=[], opened_at=current.opened_at,
                updated_at=origin, forecast=current.details,
            ))  # fmt: skip
    return alerts


def _alert(series: SeriesForecast, warning_id: str, state: AlertState, opened_at: datetime, details: ForecastDetails) -> Alert:
    return Alert(
        id=warning_id,
        kind="forecast",
        watch=series.watch.name,
        key=series.key,
        severity="info",
        state=state,
        window_start=series.origin,
        window_end=details.horizon_end,
        observed=series.last_posts,
        baseline=details.forecast if details.metric == "volume" else None,
        negative_share=round(series.last_negative_share, 4),
        baseline_negative_share=details.forecast if details.metric == "negative_share" else None,
        score=round(min(1.0, max(0.0, details.upper_80 / details.threshold)) if details.threshold else 1.0, 4),
        sample_posts=[],
        top_terms=[],
        opened_at=opened_at,
        updated_at=series.origin,
        forecast=details,
    )
