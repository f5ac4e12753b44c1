"""Forecast warnings: one per crossing episode, updated when the crossing moves, then resolved."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np

from pipeline.alerting.watches import Watch, WatchConfig
from pipeline.forecasting.model import HOURLY, Forecast
from pipeline.forecasting.warnings import OpenWarning, SeriesForecast, transitions
from pipeline.schemas import AlertState

ORIGIN = datetime(2015, 2, 8, 6, tzinfo=timezone.utc)
WATCH = Watch(WatchConfig.model_validate({
    "name": "hk", "match": {"keywords": {"en": ["locust"]}},
    "rules": {"window": "1h", "static": {"min_count": 100, "negative_share": 0.6, "negative_min_count": 20}},
}))  # fmt: skip


def band(upper_80: list[float], mean: float = 10.0) -> Forecast:
    upper = np.array(upper_80 + [0.0] * (24 - len(upper_80)))
    flat = np.full(24, mean)
    return Forecast(flat, flat * 0, upper, flat * 0, upper + 1, ("seasonal_naive",))


def series(volume_upper: list[float], share_upper: list[float] = (), origin: datetime = ORIGIN, volume_mean: float = 10.0):
    return SeriesForecast(WATCH, "all", HOURLY, origin, band(volume_upper, volume_mean), band(list(share_upper), 0.5), 42, 0.25)


def as_open(alert) -> dict:
    return {(alert.watch, alert.key, alert.forecast.metric): OpenWarning(alert.id, alert.opened_at, alert.forecast)}


def test_a_crossing_opens_an_info_warning_with_the_first_crossing_step():
    [alert] = transitions([series([50, 90, 120, 150])], {}, ORIGIN)
    assert (alert.kind, alert.state, alert.severity, alert.scale) == ("forecast", AlertState.OPEN, "info", None)
    assert alert.forecast.metric == "volume" and alert.forecast.threshold == 100
    assert alert.forecast.upper_80 == 120 and alert.forecast.horizon_end == ORIGIN + timedelta(hours=3)
    assert alert.window_start == ORIGIN and alert.window_end == ORIGIN + timedelta(hours=3)
    assert alert.observed == 42 and alert.story is None


def test_no_crossing_no_warning():
    assert transitions([series([50, 99.9])], {}, ORIGIN) == []


def test_the_same_episode_is_not_opened_twice_and_moves_are_updates():
    [opened] = transitions([series([50, 120])], {}, ORIGIN)
    later = ORIGIN + timedelta(hours=1)
    assert transitions([series([120], origin=later)], as_open(opened), later) == []  # the same hour crosses
    [moved] = transitions([series([50, 101], origin=later)], as_open(opened), later)  # now an hour later
    assert (moved.id, moved.state, moved.opened_at) == (opened.id, AlertState.UPDATED, ORIGIN)


def test_a_refit_that_no_longer_crosses_resolves_and_the_next_crossing_is_a_new_episode():
    [opened] = transitions([series([50, 120])], {}, ORIGIN)
    later = ORIGIN + timedelta(hours=2)
    [resolved] = transitions([series([60, 70], origin=later)], as_open(opened), later)
    assert (resolved.id, resolved.state) == (opened.id, AlertState.RESOLVED)
    again = ORIGIN + timedelta(hours=5)
    [reopened] = transitions([series([130], origin=again)], {}, again)
    assert reopened.id != opened.id and reopened.state == AlertState.OPEN


def test_ids_are_deterministic_per_watch_key_metric_and_origin():
    first = transitions([series([120])], {}, ORIGIN)[0].id
    assert transitions([series([120])], {}, ORIGIN)[0].id == first
    assert transitions([series([120], origin=ORIGIN + timedelta(hours=1))], {}, ORIGIN)[0].id != first


def test_negative_share_warns_only_where_the_forecast_volume_reaches_the_minimum():
    assert transitions([series([0], share_upper=[0.7], volume_mean=10.0)], {}, ORIGIN) == []
    [alert] = transitions([series([0], share_upper=[0.7], volume_mean=25.0)], {}, ORIGIN)
    assert alert.forecast.metric == "negative_share" and alert.baseline_negative_share == 0.5


def test_an_episode_whose_series_is_gone_resolves():
    [opened] = transitions([series([120])], {}, ORIGIN)
    later = ORIGIN + timedelta(hours=1)
    [resolved] = transitions([], as_open(opened), later)
    assert (resolved.id, resolved.state, resolved.updated_at) == (opened.id, AlertState.RESOLVED, later)
