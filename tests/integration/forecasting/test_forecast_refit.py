"""The refit on the real engine: a ramping stream warns before its threshold is crossed, a flat
one never; forecasts replace by origin; a watch's SQL condition selects what its Python matcher does."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from pipeline.alerting.engine import AlertEngine
from pipeline.alerting.watches import Watch, WatchConfig, load_watches
from pipeline.forecasting import series as source
from pipeline.forecasting.service import Refitter
from pipeline.schemas import Alert, AlertState
from pipeline.settings import Settings
from tests.integration.analytics.analytics_samples import make_post
from tests.integration.forecasting.conftest import DB

pytestmark = pytest.mark.integration

START = datetime(2015, 2, 1, tzinfo=timezone.utc)
THRESHOLD = 200
WATCH = Watch(WatchConfig.model_validate({
    "name": "political", "match": {"topics": ["political_affairs"]},
    "rules": {"window": "1h", "allowed_lateness": 0, "keys": ["all"], "static": {"min_count": THRESHOLD},
              "volume_surge": {"enabled": False}, "negative_surge": {"enabled": False}},
}))  # fmt: skip
FLAT_DAYS = 5


def hourly_counts(ramp: bool) -> list[int]:
    """Five days around 40 posts an hour with a daily cycle, then 16 hours either flat or growing
    by a quarter an hour (40 -> 200 in about 8 hours, as a story catching on)."""
    rng = np.random.default_rng(3)
    hours = np.arange(FLAT_DAYS * 24 + 16)
    counts = rng.poisson(40 + 15 * np.sin(2 * np.pi * hours / 24))
    if ramp:
        counts[FLAT_DAYS * 24 :] = [round(40 * 1.25**k) for k in range(1, 17)]
    return [int(c) for c in counts]


def posts_of_hour(hour: int, count: int) -> list:
    at = START + timedelta(hours=hour)
    return [make_post(f"h{hour}-{i}", at + timedelta(seconds=3599 * i // max(count, 1)), topic="political_affairs")
            for i in range(count)]  # fmt: skip


def replay(sink, counts: list[int]) -> tuple[list[Alert], list[dict]]:
    """Store the stream hour by hour with a refit after each hour's posts (as the worker's timer
    does while the hour fills); the alert engine reads the same posts."""
    refitter, engine = Refitter(sink, DB, [WATCH]), AlertEngine([WATCH])
    warnings, observed = [], []
    for hour, count in enumerate(counts):
        posts = posts_of_hour(hour, count)
        sink.insert_posts(posts)
        for post in posts:
            observed += engine.process(post)
        if hour >= 2 * 24:
            result = refitter.refit()
            sink.insert_alerts(result.warnings)
            warnings += result.warnings
    observed += engine.flush()
    return warnings, observed


def test_a_ramp_is_warned_about_before_the_threshold_is_crossed(sink):
    warnings, observed = replay(sink, hourly_counts(ramp=True))
    crossed = next(a for a in observed if a["state"] == "open")
    crossing_hour = datetime.fromisoformat(crossed["window_start"].replace("Z", "+00:00"))
    opened = [w for w in warnings if w.state == AlertState.OPEN]
    assert opened, "no forecast warning"
    first = opened[0]
    # refit while the hour before the crossing hour fills, from the hours before it: the warning
    # comes at least an hour before the count crosses and two before the surge alert (window end)
    assert first.window_start < crossing_hour
    assert first.window_start <= datetime.fromisoformat(crossed["window_end"].replace("Z", "+00:00")) - timedelta(hours=2)
    assert (first.kind, first.severity, first.watch, first.key) == ("forecast", "info", "political", "all")
    assert first.forecast.threshold == THRESHOLD and first.forecast.upper_80 >= THRESHOLD
    assert first.window_start < first.forecast.horizon_end <= first.window_start + timedelta(hours=24)
    assert len(opened) == 1  # one episode: later refits update it, never reopen it


def test_a_flat_stream_is_never_warned_about(sink):
    warnings, observed = replay(sink, hourly_counts(ramp=False))
    assert warnings == [] and observed == []


def test_a_newer_origin_replaces_the_forecast_of_each_period_it_covers(sink):
    counts = hourly_counts(ramp=False)[: 3 * 24]
    for hour, count in enumerate(counts):
        sink.insert_posts(posts_of_hour(hour, count))
    refitter = Refitter(sink, DB, [WATCH])
    first = refitter.refit()
    again = refitter.refit()
    assert first.rows == again.rows > 0 and first.origin == again.origin == START + timedelta(hours=3 * 24 - 1)
    assert sink.query("SELECT count() FROM pd.forecasts FINAL") == [(first.rows,)]  # the repeat replaced itself
    sink.insert_posts(posts_of_hour(3 * 24, 30))
    later = refitter.refit()
    assert later.origin == first.origin + timedelta(hours=1)
    rows = dict(sink.query(
        "SELECT t, origin FROM pd.forecasts FINAL WHERE watch = 'political' AND key = 'all' AND metric = 'volume'"
        " AND resolution = 'hour' ORDER BY t"
    ))  # fmt: skip
    assert len(rows) == 25  # the first refit's first hour keeps its forecast; the other 24 are the new refit's
    naive_first = first.origin.replace(tzinfo=None)  # ClickHouse returns UTC wall time
    assert rows[naive_first] == naive_first
    assert {origin for t, origin in rows.items() if t > naive_first} == {later.origin.replace(tzinfo=None)}


def test_watch_conditions_select_what_the_watches_match(sink):
    """Every shipped watch on the sample stream plus posts that probe word boundaries and stems."""
    from pipeline.stages import EnrichStage, RawRecord
    from pipeline.samples.generate import generate
    from pipeline.worker import load_analyser

    settings = Settings(enricher="lexical")
    stage = EnrichStage(settings, load_analyser(settings))
    raw = generate(seed=7, count=600)
    enriched = stage.enrich([RawRecord(p.encode(), "posts.raw", 0, i) for i, p in enumerate(raw)]).enriched
    probes = [
        ("p1", "香港hk的内地游客", ["HK"]), ("p2", "Mainland tourists in HK!", []), ("p3", "mainland touristsx hk", []),
        ("p4", "Туристы из материкового Китая в Гонконге", []), ("p5", "locusts, Kowloon", []),
        ("p6", "anti-mainland march", ["HK"]), ("p7", "hk-locust", []), ("p8", "LOCUST in Sheung Shui", []),
    ]  # fmt: skip
    enriched += [make_post(pid, START, text=text, text_norm=text, countries=countries) for pid, text, countries in probes]
    sink.insert_posts(enriched)
    for watch in load_watches(settings.watches_dir):
        condition, params = source.watch_condition(watch)
        got = set(sink.query(
            f"SELECT id, arrayJoin({source.watch_keys_sql(watch)}) FROM pd.posts FINAL WHERE {condition}", params
        ))  # fmt: skip
        expected = {(p.id, key) for p in enriched if watch.matches(p) for key in watch.keys_for(p)}
        assert got == expected, watch.name
        assert expected or watch.name != "hk_mainland_tourists"
