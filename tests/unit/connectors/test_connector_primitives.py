"""Token bucket, backoff, Retry-After parsing, checkpoint store and pacing: the arithmetic every connector relies on."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from pipeline.backoff import Backoff, retry_after_seconds
from pipeline.connectors.checkpoint import CheckpointStore
from pipeline.connectors.pacing import Pacer
from pipeline.connectors.ratelimit import TokenBucket


class FakeClock:
    """Time that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_token_bucket_spends_the_burst_then_waits_one_interval_per_token():
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=3, clock=clock, sleep=clock.sleep)
    waits = [await bucket.acquire() for _ in range(5)]
    assert waits[:3] == [0, 0, 0]
    assert waits[3:] == pytest.approx([0.1, 0.1])
    assert clock.now - 1000.0 == pytest.approx(0.2)


async def test_token_bucket_refills_while_idle_but_not_beyond_the_burst():
    clock = FakeClock()
    bucket = TokenBucket(rate=2, burst=2, clock=clock, sleep=clock.sleep)
    await bucket.acquire()
    await bucket.acquire()
    clock.now += 60  # a long pause earns at most `burst` tokens
    assert [await bucket.acquire() for _ in range(3)] == pytest.approx([0, 0, 0.5])


async def test_unlimited_bucket_never_waits_and_zero_rate_is_refused():
    clock = FakeClock()
    bucket = TokenBucket(rate=None, clock=clock, sleep=clock.sleep)
    assert [await bucket.acquire() for _ in range(1000)] == [0.0] * 1000
    with pytest.raises(ValueError):
        TokenBucket(rate=0)


def test_backoff_ceiling_doubles_up_to_the_cap_and_delays_stay_under_it():
    backoff = Backoff(base_s=0.5, factor=2, cap_s=10)
    assert [backoff.ceiling(a) for a in range(6)] == [0.5, 1, 2, 4, 8, 10]
    rng = random.Random(7)
    delays = [backoff.delay(4, rng) for _ in range(200)]
    assert all(0 <= d <= 8 for d in delays)
    assert max(delays) > 6 and min(delays) < 2  # full jitter spreads over the whole range


def test_retry_after_accepts_seconds_http_dates_and_x_reset_epochs():
    now = 1_700_000_000.0
    assert retry_after_seconds({"Retry-After": "7"}, now) == 7
    http_date = format_datetime(datetime.fromtimestamp(now + 30, timezone.utc), usegmt=True)
    assert retry_after_seconds({"Retry-After": http_date}, now) == pytest.approx(30)
    assert retry_after_seconds({"x-rate-limit-reset": str(int(now) + 42)}, now) == 42
    assert retry_after_seconds({"x-rate-limit-reset": str(int(now) - 5)}, now) == 0
    assert retry_after_seconds({"Retry-After": "soon"}, now) is None
    assert retry_after_seconds({}, now) is None


def test_checkpoint_round_trips_and_is_absent_before_the_first_save(tmp_path):
    store = CheckpointStore(tmp_path / "checkpoints" / "jsonl-a.json")
    assert store.load() is None
    store.save({"offset": 120, "line": 3})
    store.save({"offset": 250, "line": 6})
    assert CheckpointStore(store.path).load() == {"offset": 250, "line": 6}
    assert [p.name for p in store.path.parent.iterdir()] == ["jsonl-a.json"]  # no temp file left behind


def test_a_failed_checkpoint_write_keeps_the_previous_checkpoint(tmp_path):
    store = CheckpointStore(tmp_path / "c.json")
    store.save({"since_id": "41"})
    with pytest.raises(TypeError):
        store.save({"since_id": object()})  # not JSON: fails before anything replaces the file
    assert store.load() == {"since_id": "41"}
    assert json.loads(store.path.read_text())["position"] == {"since_id": "41"}


def test_pacer_maps_event_time_to_wall_time_divided_by_speed():
    clock = FakeClock()
    pacer = Pacer(60, clock=clock, sleep=clock.sleep)
    t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
    assert pacer.delay_for(t0) == 0
    assert pacer.delay_for(t0 + timedelta(minutes=1)) == pytest.approx(1.0)
    clock.now += 0.25
    assert pacer.delay_for(t0 + timedelta(minutes=2)) == pytest.approx(1.75)
    assert pacer.delay_for(t0 - timedelta(hours=1)) == 0  # out-of-order posts are not held back


async def test_pacer_speed_zero_never_sleeps():
    clock = FakeClock()
    pacer = Pacer(0, clock=clock, sleep=clock.sleep)
    t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
    for hours in range(5):
        await pacer.wait_for(t0 + timedelta(hours=hours))
    assert clock.slept == []
    with pytest.raises(ValueError):
        Pacer(-1)
