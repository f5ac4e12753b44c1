"""A refit: every series from ClickHouse, forecast, stored in `forecasts`, with its warnings.

Run on a schedule by the worker that owns the alert engine (`schedule`), by
``python -m pipeline forecast --refit`` and by the tests; it reads aggregates, never posts one
by one, and a refit at an origin already forecast changes nothing (same rows, no transition).
The origin is the start of the newest period holding a post (event time, so a replay of 2015
forecasts 2015): that period is still filling and is forecast, not used.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Protocol

import numpy as np

from pipeline.alerting.watches import Watch
from pipeline.analytics import attitude
from pipeline.forecasting import series as source
from pipeline.forecasting.model import MODEL_NAME, RESOLUTIONS, Forecast, Resolution, forecast
from pipeline.forecasting.warnings import SeriesForecast, open_warnings, threshold_resolution, transitions
from pipeline.schemas import Alert

log = logging.getLogger(__name__)

FORECAST_COLUMNS = ("watch", "key", "metric", "resolution", "t", "origin", "step", "forecast", "lower_80",
                    "upper_80", "lower_95", "upper_95", "model", "fitted_at")  # fmt: skip


class ForecastStore(Protocol):
    """ClickHouse as the refit uses it (`ClickHouseSink` in the worker)."""

    def query(self, sql: str, parameters: dict | None = None) -> list[tuple]: ...
    def insert_rows(self, table: str, columns: Sequence[str], rows: list[tuple]) -> int: ...


@dataclass
class RefitResult:
    origin: datetime | None
    """Start of the newest hour holding a post; None when there is no post at all."""
    series: int = 0
    rows: int = 0
    warnings: list[Alert] = field(default_factory=list)


def _rows(watch: str, key: str, metric: str, resolution: Resolution, origin: datetime, f: Forecast, fitted_at: datetime):
    step_s = resolution.seconds
    for step in range(resolution.horizon):
        yield (watch, key, metric, resolution.name, origin + timedelta(seconds=step * step_s), origin, step,
               float(f.mean[step]), float(f.lower_80[step]), float(f.upper_80[step]), float(f.lower_95[step]),
               float(f.upper_95[step]), MODEL_NAME, fitted_at)  # fmt: skip


class Refitter:
    def __init__(self, store: ForecastStore, db: str, watches: Sequence[Watch]):
        self.store = store
        self.db = db
        self.watches = {watch.name: watch for watch in watches}
        self.last_origin: datetime | None = None

    def _query(self, sql: str, params: dict) -> list[tuple]:
        return self.store.query(sql, params)

    def refit_if_new(self) -> RefitResult | None:
        """A refit when data reached a new hour since `last_origin`, which the caller sets once the
        refit's warnings are published (the timer's entry point)."""
        span = source.data_span(self._query, self.db)
        if span is None or source.period_floor(span[1], RESOLUTIONS["hour"]) == self.last_origin:
            return None
        return self.refit()

    def refit(self) -> RefitResult:
        span = source.data_span(self._query, self.db)
        if span is None:
            return RefitResult(None)
        first, newest = span
        fitted_at = datetime.now(timezone.utc)
        result = RefitResult(source.period_floor(newest, RESOLUTIONS["hour"]))
        rows: list[tuple] = []
        watched: list[SeriesForecast] = []
        for resolution in RESOLUTIONS.values():
            origin = source.period_floor(newest, resolution)
            start = source.grid_start(first, origin, resolution)
            counts = source.overall_counts(self._query, self.db, resolution, start, origin)
            counts |= source.watch_counts(self._query, self.db, list(self.watches.values()), resolution, start, origin)
            for (watch, key), c in counts.items():
                volume = forecast(c.posts, resolution).clipped(0.0, None)
                share = forecast(c.negative_share(), resolution).clipped(0.0, 1.0)
                rows += _rows(watch, key, "volume", resolution, origin, volume, fitted_at)
                rows += _rows(watch, key, "negative_share", resolution, origin, share, fitted_at)
                result.series += 1
                if watch and threshold_resolution(self.watches[watch]) == resolution.name:
                    watched.append(SeriesForecast(
                        self.watches[watch], key, resolution, origin, volume, share,
                        int(c.posts[-1]), float(c.negative_share()[-1]),
                    ))  # fmt: skip
            if resolution.name == "day":
                rows += self._attitude_rows(start, origin, resolution, fitted_at, result)
        result.rows = self.store.insert_rows("forecasts", FORECAST_COLUMNS, rows)
        result.warnings = transitions(watched, open_warnings(self._query, self.db), result.origin)
        return result

    def _attitude_rows(self, start: datetime, origin: datetime, resolution: Resolution, fitted_at, result) -> list[tuple]:
        """Daily volume and net score of each public's posts mentioning China."""
        size = int((origin - start).total_seconds() // resolution.seconds)
        grids: dict[str, np.ndarray] = {}
        for day, public, n, negative, positive in attitude.daily_counts(self._query, self.db, start, origin):
            index = int((source.utc(day) - start).total_seconds() // resolution.seconds)
            if 0 <= index < size:
                grids.setdefault(public, np.zeros((3, size)))[:, index] += (n, negative, positive)
        rows: list[tuple] = []
        for public, (posts, negative, positive) in sorted(grids.items()):
            if posts.sum() < source.MIN_POSTS[resolution.name]:
                continue
            key = f"attitude:{public}"
            volume = forecast(posts, resolution).clipped(0.0, None)
            net = forecast(attitude.net_score(posts, negative, positive), resolution).clipped(-1.0, 1.0)
            rows += _rows("", key, "volume", resolution, origin, volume, fitted_at)
            rows += _rows("", key, "net_score", resolution, origin, net, fitted_at)
            result.series += 1
        return rows

