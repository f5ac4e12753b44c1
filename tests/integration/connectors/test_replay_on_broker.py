"""Replay a time range of posts.raw into another namespace, selected by the records' own timestamps."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from pipeline.replay import replay
from pipeline.settings import Topics
from pipeline.testing import produce
from pipeline.topics import ensure_topics
from tests.integration.kafka_io import read_topic

pytestmark = pytest.mark.integration

T0 = datetime(2019, 3, 16, tzinfo=timezone.utc)


def stamped(keys_at: list[tuple[str, datetime]]) -> list:
    """Records keyed and valued by name, with the given CreateTimes; sent together they travel in
    multi-record batches (the embedded broker's weak spot)."""
    return [(key.encode(), key.encode(), int(at.timestamp() * 1000)) for key, at in keys_at]


async def test_replay_selects_by_create_time_even_for_late_backfills(make_settings):
    src, dst = make_settings(), make_settings()
    await ensure_topics(src)
    await produce(src, Topics.RAW, stamped([(f"k{i:02d}", T0 + timedelta(hours=i)) for i in range(24)]))
    await produce(
        src,
        Topics.RAW,
        stamped([("backfill-in", T0 + timedelta(hours=10, minutes=30)), ("backfill-out", T0 - timedelta(days=30))]),
    )
    start, end = T0 + timedelta(hours=6), T0 + timedelta(hours=12)

    stats = await replay(src, dst, start, end, speed=0)

    expected = {f"k{i:02d}" for i in range(6, 12)} | {"backfill-in"}
    assert stats.scanned == 26 and stats.produced == len(expected)
    copied = await read_topic(dst, Topics.RAW, expected=len(expected))
    assert {r.key.decode() for r in copied} == expected
    assert all(start <= datetime.fromtimestamp(r.timestamp / 1000, timezone.utc) < end for r in copied)
    assert len(await read_topic(src, Topics.RAW, idle_s=1)) == 26  # the source namespace is untouched


async def test_replay_paces_by_timestamps_and_refuses_its_own_namespace(make_settings):
    src, dst = make_settings(), make_settings()
    await ensure_topics(src)
    await produce(src, Topics.RAW, stamped([(f"m{i}", T0 + timedelta(seconds=20 * i)) for i in range(4)]))  # 60 s of event time

    started = time.monotonic()
    stats = await replay(src, dst, T0, T0 + timedelta(minutes=5), speed=60)
    assert stats.produced == 4 and time.monotonic() - started >= 0.95  # 60 s / 60 = 1 s of pacing

    with pytest.raises(ValueError, match="namespace of its own"):
        await replay(src, src, T0, T0 + timedelta(minutes=5))
