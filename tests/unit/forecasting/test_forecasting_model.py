"""The seasonal ensemble beats seasonal naive on noisy seasonal counts and its intervals hold."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.forecasting.model import DAILY, HOURLY, forecast, seasonal_naive


def daily_cycle_counts(days: int, seed: int) -> np.ndarray:
    """Poisson counts around a daily cycle (mean 20, amplitude 12)."""
    rng = np.random.default_rng(seed)
    hours = np.arange(days * 24)
    return rng.poisson(20 + 12 * np.sin(2 * np.pi * hours / 24)).astype(float)


def test_beats_seasonal_naive_and_covers_on_noisy_seasonal_counts():
    errors, naive_errors, inside_80, inside_95 = [], [], [], []
    for seed in range(8):
        y = daily_cycle_counts(15, seed)
        for origin in range(10 * 24, 14 * 24 + 1, 24):
            history, actual = y[:origin], y[origin : origin + 24]
            result = forecast(history, HOURLY)
            errors.append(np.abs(actual - result.mean).mean())
            naive_errors.append(np.abs(actual - seasonal_naive(history, 24, 24)).mean())
            inside_80.append(np.mean((actual >= result.lower_80) & (actual <= result.upper_80)))
            inside_95.append(np.mean((actual >= result.lower_95) & (actual <= result.upper_95)))
    assert np.mean(errors) < 0.85 * np.mean(naive_errors)
    assert 0.72 <= np.mean(inside_80) <= 0.92
    assert 0.88 <= np.mean(inside_95) <= 1.0


def test_intervals_are_ordered_and_members_named():
    result = forecast(daily_cycle_counts(10, 1), HOURLY)
    assert len(result.mean) == 24 and len(result.members) == 2
    assert np.all(result.lower_95 <= result.lower_80) and np.all(result.lower_80 <= result.mean)
    assert np.all(result.mean <= result.upper_80) and np.all(result.upper_80 <= result.upper_95)


def test_weekly_pattern_is_used_once_three_weeks_exist():
    weekday = np.tile(np.r_[np.full(24, 10.0), np.full(24, 10.0), np.full(24, 10.0), np.full(24, 10.0),
                            np.full(24, 10.0), np.full(24, 60.0), np.full(24, 60.0)], 4)  # fmt: skip
    result = forecast(weekday[: 27 * 24], HOURLY)  # the first busy day was yesterday, tomorrow is the second
    assert any(member.startswith("weekly") for member in result.members)
    assert np.allclose(result.mean, 60.0)


@pytest.mark.parametrize("length", [0, 1, 5, 20])
def test_short_history_still_forecasts_the_whole_horizon(length):
    result = forecast(np.arange(length, dtype=float), DAILY)
    assert len(result.mean) == DAILY.horizon == len(result.upper_95)
    assert result.members == ()


def test_clipped_keeps_counts_and_shares_in_range():
    result = forecast(np.r_[np.zeros(100), np.ones(20)], HOURLY).clipped(0.0, 1.0)
    for band in (result.mean, result.lower_95, result.upper_95):
        assert band.min() >= 0.0 and band.max() <= 1.0
