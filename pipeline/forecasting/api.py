"""Forecasts as the dashboard, Grafana and `python -m pipeline forecast` read them.

The views (`VIEWS`) run through `pipeline.analytics.views.run` like every dashboard view and are
laid out in Grafana by `pipeline.analytics.grafana`; the functions return JSON-ready rows for an
API route. A series is (watch, key, metric, resolution) with watch '' for all posts; see
migration 030 for the keys.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from pipeline.alerting.watches import Watch
from pipeline.analytics.views import View, run
from pipeline.forecasting import series as source
from pipeline.forecasting.model import RESOLUTIONS

Query = Callable[[str, dict], list[tuple]]
METRICS = ("volume", "negative_share", "net_score")
BAND_COLUMNS = ("t", "forecast", "lower_80", "upper_80", "lower_95", "upper_95")

BAND = View(
    "forecast_band",
    "Forecast of the watch's hourly volume (80 % / 95 % bands)",
    """
SELECT t, key, forecast, lower_80, upper_80, lower_95, upper_95
FROM {db}.forecasts FINAL
WHERE watch = {watch:String} AND metric = 'volume' AND resolution = 'hour'
  AND t >= {start:DateTime64(3, 'UTC')} AND t < {end:DateTime64(3, 'UTC')} + INTERVAL 1 DAY
ORDER BY t, key""",
    ("t", "key", "forecast", "lower_80", "upper_80", "lower_95", "upper_95"),
)
"""Each hour's newest forecast: past hours show what was forecast for them, the 24 h after the
range's end the current forecast (Grafana draws up to the range's end; `now` shows nothing ahead)."""

OVERVIEW = View(
    "forecast_overview",
    "Current forecasts: next 24 hours and next 14 days",
    """
SELECT watch, key, metric, resolution, max(f.origin) AS origin, argMin(forecast, step) AS next_forecast,
       max(forecast) AS peak_forecast, max(upper_80) AS peak_upper_80, argMax(t, upper_80) AS peak_at, any(model) AS model
FROM {db}.forecasts AS f FINAL
WHERE (f.watch, f.key, f.metric, f.resolution, f.origin) IN (
    SELECT watch, key, metric, resolution, max(origin) FROM {db}.forecasts GROUP BY watch, key, metric, resolution)
GROUP BY watch, key, metric, resolution
ORDER BY watch, key, metric, resolution""",
    ("watch", "key", "metric", "resolution", "origin", "next_forecast", "peak_forecast", "peak_upper_80", "peak_at",
     "model"),
    "table",
)  # fmt: skip

VIEWS = {view.name: view for view in (BAND, OVERVIEW)}

_CURRENT_SQL = """
SELECT origin, model, t, forecast, lower_80, upper_80, lower_95, upper_95
FROM {db}.forecasts FINAL
WHERE watch = {watch:String} AND key = {key:String} AND metric = {metric:String} AND resolution = {resolution:String}
  AND origin = (SELECT max(origin) FROM {db}.forecasts
                WHERE watch = {watch:String} AND key = {key:String} AND metric = {metric:String}
                  AND resolution = {resolution:String})
ORDER BY t"""


def current_forecast(query: Query, db: str, watch: str, key: str, metric: str = "volume", resolution: str = "hour") -> dict:
    """The newest refit's forecast of one series: {watch, key, metric, resolution, origin, model,
    steps: [{t, forecast, lower_80, upper_80, lower_95, upper_95}]} (origin None when never forecast)."""
    params = {"watch": watch, "key": key, "metric": metric, "resolution": resolution}
    rows = query(_CURRENT_SQL.replace("{db}", db), params)
    return {
        **params,
        "origin": source.utc(rows[0][0]) if rows else None,
        "model": rows[0][1] if rows else None,
        "steps": [dict(zip(BAND_COLUMNS, (source.utc(row[2]), *row[3:]), strict=True)) for row in rows],
    }


def forecast_band(query: Query, db: str, watch: str, start: datetime, end: datetime) -> list[dict]:
    """Dashboard data: hourly volume forecasts of every key of `watch` (see `BAND`)."""
    return run(BAND, query, db, watch=watch, start=start, end=end)


def forecast_overview(query: Query, db: str) -> list[dict]:
    """Dashboard data: one row per series with its newest forecast (see `OVERVIEW`)."""
    return run(OVERVIEW, query, db)


def observed(
    query: Query, db: str, watches: Sequence[Watch], watch: str, key: str, resolution: str, start: datetime, end: datetime
) -> list[dict]:
    """What happened, on the forecast's grid: [{t, posts, negative_share}] of one series over
    [start, end) — a watch's keys through its match condition, the overall ones from the aggregates."""
    step = RESOLUTIONS[resolution]
    start, end = source.period_floor(start, step), source.period_floor(end, step)
    if watch:
        counts = source.watch_counts(query, db, [w for w in watches if w.name == watch], step, start, end, min_posts=0)
    else:
        counts = source.overall_counts(query, db, step, start, end, min_posts=0)
    found = counts.get((watch, key))
    if found is None:
        return []
    share = found.negative_share()
    return [
        {"t": start + timedelta(seconds=i * step.seconds), "posts": int(n), "negative_share": float(share[i])}
        for i, n in enumerate(found.posts)
    ]


def render_text(forecast: dict) -> str:
    """`python -m pipeline forecast` output."""
    head = f"{forecast['watch'] or '(all posts)'} {forecast['key']} {forecast['metric']} per {forecast['resolution']}"
    if forecast["origin"] is None:
        return f"{head}: no forecast yet (it is refit every FORECAST_REFIT_S by the worker, or use --refit)\n"
    lines = [f"{head}, from {forecast['origin'].isoformat()} ({forecast['model']})",
             f"{'period':25s} {'forecast':>9s} {'80% low':>9s} {'80% high':>9s} {'95% low':>9s} {'95% high':>9s}"]  # fmt: skip
    for s in forecast["steps"]:
        lines.append(f"{s['t'].isoformat():25s} " + " ".join(f"{s[c]:9.3f}" for c in BAND_COLUMNS[1:]))
    return "\n".join(lines) + "\n"
