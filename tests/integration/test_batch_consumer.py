"""BatchConsumer on the real broker: batch windows, backlog hand-over, commits after the handler."""

from __future__ import annotations

import asyncio
import time

import pytest

from pipeline.batches import BatchConsumer
from pipeline.settings import Topics
from pipeline.testing import produce
from pipeline.topics import ensure_topics
from tests.integration.kafka_io import committed_total

pytestmark = pytest.mark.integration

WINDOW_S = 2.0
SLOW_HANDLING_S = 3.0


def test_records_that_waited_out_a_slow_batch_are_handed_over_at_once(make_settings):
    """While a batch is handled for longer than the window, the records that arrive meanwhile have
    already waited a whole window: the next batch must start right away, not a window later."""
    settings = make_settings(topic_partitions=1)
    asyncio.run(ensure_topics(settings))
    handled: list[tuple[float, int, float]] = []  # (started, size, finished)

    async def handler(records) -> None:
        started = time.monotonic()
        if not handled:
            await produce(settings, Topics.RAW, [(None, b"second %d" % i) for i in range(5)])
            await asyncio.sleep(SLOW_HANDLING_S)
        handled.append((started, len(records), time.monotonic()))

    async def scenario() -> None:
        consumer = BatchConsumer(settings, settings.topic(Topics.RAW), "test", handler, max_records=100, within_s=WINDOW_S)
        task = asyncio.create_task(consumer.run())
        await produce(settings, Topics.RAW, [(None, b"first")])
        deadline = time.monotonic() + 60
        while len(handled) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    (_, first_size, first_done), (second_started, second_size, _) = handled[:2]
    assert (first_size, second_size) == (1, 5)
    assert second_started - first_done < WINDOW_S / 2
    assert asyncio.run(committed_total(settings, Topics.RAW, settings.group_id("test"))) == 6  # both batches committed
