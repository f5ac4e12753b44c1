"""The forecasting model: a small seasonal ensemble chosen per series on its own recent past.

Social-media volume is seasonal (the day, the week), bursty and often short-lived, and the
pipeline forecasts hundreds of series per refit. The model is therefore a handful of robust,
cheap forecasters (seasonal naive, seasonal median and mean of the last cycles, a trimmed
seasonal mean, Holt-Winters level + season, the last value, and weekly variants once three
weeks of hourly history exist). Each refit backtests them on the series' own recent past
(rolling origins inside the history), averages the two with the lowest absolute error, and
takes its prediction intervals from the empirical quantiles of that average's own backtest
errors (partial horizons included, so a short history still yields residuals), widened by a
factor per resolution. Last, the mean of the two latest one-step errors shifts the forecast and,
where it exceeds the usual one-step error, widens the band, both fading by `Resolution.level_decay` a step:
a seasonal ensemble alone would keep forecasting yesterday's profile while a story takes off.
Every setting was chosen on the development part of `bench.forecast` (README, "Forecasts").

statsforecast's AutoETS was measured against it and lost (README); the model is pure numpy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

MODEL_NAME = "seasonal-ensemble-v1"
"""Stored with every forecast and alert: a change of the method must change the name."""

Forecaster = Callable[[np.ndarray, int, int], np.ndarray]
"""(history, season length, horizon) -> point forecasts."""


@dataclass(frozen=True)
class Resolution:
    """How one time step is forecast: season, horizon and the ensemble's backtest settings."""

    name: str
    seconds: int
    season: int
    horizon: int
    select_step: int
    """Spacing of the backtest origins used to rank the forecasters."""
    select_origins: int
    residual_step: int
    """Spacing of the backtest origins whose errors give the intervals."""
    residual_origins: int
    interval_scale: float
    """Widening of the empirical error quantiles (backtest errors of a chosen model are optimistic)."""
    level_decay: float = 0.0
    """Per step, how fast the shift by the latest one-step errors (and the band's widening) fades;
    0 = no shift (daily: on the development part a shift made daily forecasts worse)."""
    weekly_season: int | None = None


HOURLY = Resolution("hour", 3600, season=24, horizon=24, select_step=12, select_origins=8, residual_step=12,
                    residual_origins=14, interval_scale=1.15, level_decay=0.8, weekly_season=168)  # fmt: skip
DAILY = Resolution("day", 86400, season=7, horizon=14, select_step=7, select_origins=4, residual_step=1,
                   residual_origins=21, interval_scale=2.4)  # fmt: skip
RESOLUTIONS = {r.name: r for r in (HOURLY, DAILY)}

ENSEMBLE_SIZE = 2
MIN_CYCLES = 2
"""A forecaster is backtested at an origin only with this many seasons of history before it."""
MIN_RESIDUALS = 10
RECENT_ERRORS = 2
MAX_WIDENING = 10.0
Z_80, Z_95 = 1.2816, 1.96


@dataclass(frozen=True)
class Forecast:
    mean: np.ndarray
    lower_80: np.ndarray
    upper_80: np.ndarray
    lower_95: np.ndarray
    upper_95: np.ndarray
    members: tuple[str, ...]
    """The forecasters averaged (empty: too little history, seasonal naive with a spread band)."""

    def clipped(self, low: float | None, high: float | None) -> "Forecast":
        """Bounded metrics (counts >= 0, shares in [0, 1])."""
        clip = lambda a: np.clip(a, low, high)  # noqa: E731
        return Forecast(clip(self.mean), clip(self.lower_80), clip(self.upper_80), clip(self.lower_95),
                        clip(self.upper_95), self.members)  # fmt: skip


def _same_phase(history: np.ndarray, season: int, horizon: int, cycles: int) -> np.ndarray:
    """(horizon, cycles): for step h, the values of the `cycles` most recent past seasons at h's phase."""
    n = len(history)
    steps = np.arange(horizon)
    back = (steps // season + 1)[:, None] + np.arange(cycles)[None, :]
    index = n + steps[:, None] - back * season
    return np.where(index >= 0, history[np.clip(index, 0, None)], np.nan)


def seasonal_naive(history: np.ndarray, season: int, horizon: int) -> np.ndarray:
    return _same_phase(history, season, horizon, 1)[:, 0]


def _seasonal(statistic: Callable[[np.ndarray], np.ndarray], cycles: int) -> Forecaster:
    def forecast(history: np.ndarray, season: int, horizon: int) -> np.ndarray:
        return statistic(_same_phase(history, season, horizon, cycles))

    return forecast


def _nanmedian(values: np.ndarray) -> np.ndarray:
    return np.nanmedian(values, axis=1)


def _nanmean(values: np.ndarray) -> np.ndarray:
    return np.nanmean(values, axis=1)


def _trimmed_mean(values: np.ndarray) -> np.ndarray:
    """Mean of the middle half of each row's values: a burst in one cycle does not move it."""
    ordered = np.sort(values, axis=1)  # NaNs sort last
    present = np.sum(~np.isnan(values), axis=1)
    out = np.empty(len(values))
    for row, (sorted_row, n) in enumerate(zip(ordered, present)):
        cut = n // 4
        out[row] = sorted_row[cut : n - cut].mean() if n else np.nan
    return out


def last_value(history: np.ndarray, season: int, horizon: int) -> np.ndarray:
    return np.full(horizon, history[-1])


def holt_winters(alpha: float = 0.2, gamma: float = 0.1) -> Forecaster:
    """Additive level + season without trend, started from the first season."""

    def forecast(history: np.ndarray, season: int, horizon: int) -> np.ndarray:
        first = history[:season]
        level = float(np.mean(first))
        seasonal = first - level
        for t in range(season, len(history)):
            phase = t % season
            error = history[t] - (level + seasonal[phase])
            level += alpha * error
            seasonal[phase] += gamma * (1 - alpha) * error
        return level + seasonal[(len(history) + np.arange(horizon)) % season]

    return forecast


def _candidates(resolution: Resolution, length: int) -> dict[str, tuple[Forecaster, int]]:
    season = resolution.season
    candidates: dict[str, tuple[Forecaster, int]] = {
        "seasonal_naive": (seasonal_naive, season),
        "seasonal_median_5": (_seasonal(_nanmedian, 5), season),
        "seasonal_mean_7": (_seasonal(_nanmean, 7), season),
        "seasonal_trimmed_7": (_seasonal(_trimmed_mean, 7), season),
        "holt_winters": (holt_winters(), season),
        "last_value": (last_value, season),
    }
    weekly = resolution.weekly_season
    if weekly is not None and length >= 3 * weekly:
        candidates |= {
            "weekly_naive": (seasonal_naive, weekly),
            "weekly_mean_2": (_seasonal(_nanmean, 2), weekly),
            "weekly_median_3": (_seasonal(_nanmedian, 3), weekly),
        }
    return candidates


def forecast(history: np.ndarray, resolution: Resolution) -> Forecast:
    """Point forecasts and 80 % / 95 % intervals for the `resolution.horizon` steps after `history`.

    `history` must be gap-free (a count series has zeros, a share series carries its last value).
    """
    y = np.asarray(history, dtype=float)
    n, horizon = len(y), resolution.horizon
    candidates = _candidates(resolution, n)
    errors: dict[str, float] = {}
    for name, (model, season) in candidates.items():
        origins = [n - horizon - k * resolution.select_step for k in range(resolution.select_origins)]
        scored = [np.abs(y[o : o + horizon] - model(y[:o], season, horizon)) for o in origins if o >= MIN_CYCLES * season]
        if scored:
            errors[name] = float(np.mean(scored))
    if not errors:
        return _fallback(y, resolution)
    members = tuple(sorted(errors, key=lambda name: (errors[name], name))[:ENSEMBLE_SIZE])

    def ensemble(past: np.ndarray, steps: int) -> np.ndarray:
        return np.mean([candidates[m][0](past, candidates[m][1], steps) for m in members], axis=0)

    mean = ensemble(y, horizon)
    longest = max(candidates[m][1] for m in members)
    residuals = []
    for k in range(resolution.residual_origins):
        origin = n - 1 - k * resolution.residual_step
        if origin < MIN_CYCLES * longest:
            break
        steps = min(horizon, n - origin)
        residuals.append(y[origin : origin + steps] - ensemble(y[:origin], steps))
    pooled = np.concatenate(residuals) if residuals else np.empty(0)
    if len(pooled) < MIN_RESIDUALS:
        return _spread_band(mean, y, members)
    q10, q90, q025, q975 = np.quantile(pooled, [0.1, 0.9, 0.025, 0.975]) * resolution.interval_scale
    # the latest one-step errors: a level the ensemble has not caught up with shifts the forecast,
    # and errors larger than usual widen the band, both fading over the horizon
    recent = [residuals[0][0]] + [y[n - j] - ensemble(y[: n - j], 1)[0] for j in range(2, RECENT_ERRORS + 1)]
    bias = float(np.mean(recent))
    typical = float(np.median(np.abs([window[0] for window in residuals[1:]]))) if len(residuals) > 1 else 0.0
    fade = resolution.level_decay ** np.arange(1, horizon + 1)
    widen = 1 + (np.clip(abs(bias) / typical, 1.0, MAX_WIDENING) - 1) * fade if typical > 0 else 1.0
    mean = mean + bias * fade
    return Forecast(mean, mean + q10 * widen, mean + q90 * widen, mean + q025 * widen, mean + q975 * widen, members)


def _fallback(y: np.ndarray, resolution: Resolution) -> Forecast:
    """Too little history to backtest: the last season repeated (or the last value) in a wide band."""
    if len(y) == 0:
        zeros = np.zeros(resolution.horizon)
        return Forecast(zeros, zeros, zeros, zeros, zeros, ())
    season = resolution.season
    mean = seasonal_naive(y, season, resolution.horizon) if len(y) >= season else last_value(y, season, resolution.horizon)
    return _spread_band(mean, y, ())


def _spread_band(mean: np.ndarray, y: np.ndarray, members: tuple[str, ...]) -> Forecast:
    spread = float(np.std(np.diff(y))) if len(y) > 2 else float(np.abs(y).max(initial=0.0))
    return Forecast(mean, mean - Z_80 * spread, mean + Z_80 * spread, mean - Z_95 * spread, mean + Z_95 * spread, members)
