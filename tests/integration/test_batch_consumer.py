"""BatchConsumer on the real broker: batch windows, backlog hand-over, commits after the handler."""

from __future__ import annotations

import asyncio
import time

import pytest

from pipeline.batches import BatchConsumer
from pipeline.settings import Topics
from pipeline.sinks import metrics
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


def test_the_next_batch_is_prepared_while_the_current_one_is_handled_and_handled_in_order(make_settings):
    settings = make_settings(topic_partitions=1)
    asyncio.run(ensure_topics(settings))
    values = [b"%03d" % i for i in range(60)]
    events: list[tuple[str, float, list[bytes]]] = []

    async def prepare(records):
        events.append(("prepared", time.monotonic(), [r.value for r in records]))
        return [r.value for r in records]

    async def handler(prepared) -> None:
        events.append(("handling", time.monotonic(), prepared))
        await asyncio.sleep(0.5)
        events.append(("handled", time.monotonic(), prepared))

    async def scenario() -> None:
        await produce(settings, Topics.RAW, [(None, v) for v in values])
        consumer = BatchConsumer(
            settings, settings.topic(Topics.RAW), "test", handler, max_records=20, within_s=0.1, prepare=prepare
        )
        task = asyncio.create_task(consumer.run())
        deadline = time.monotonic() + 60
        while sum(len(v) for kind, _, v in events if kind == "handled") < len(values) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    handled = [v for kind, _, batch in events if kind == "handled" for v in batch]
    assert handled == values  # each once, in offset order
    handling = [(at, batch) for kind, at, batch in events if kind == "handling"]
    finished = [at for kind, at, _ in events if kind == "handled"]
    for (_, batch), handled_at in zip(handling, finished):
        prepared_next = [at for kind, at, b in events if kind == "prepared" and b and b[0] > batch[-1]]
        if prepared_next:
            assert prepared_next[0] < handled_at  # the next batch was ready before this one was done
    assert asyncio.run(committed_total(settings, Topics.RAW, settings.group_id("test"))) == len(values)


def test_a_rebalance_drops_the_prepared_batch_without_losing_a_record(make_settings):
    """A batch prepared before a rebalance is stale: it is read again (by this member or the
    partition's new owner) - were it skipped, its records would never be handled."""
    settings = make_settings(topic_partitions=2)
    asyncio.run(ensure_topics(settings))
    values = {b"%03d" % i for i in range(200)}
    handled: list[bytes] = []

    async def prepare(records):
        return [r.value for r in records]

    async def handler(prepared) -> None:
        await asyncio.sleep(0.3)
        handled.extend(prepared)

    def member() -> BatchConsumer:
        return BatchConsumer(settings, settings.topic(Topics.RAW), "test", handler, max_records=10, within_s=0.05,
                             prepare=prepare)  # fmt: skip

    async def scenario() -> None:
        await produce(settings, Topics.RAW, [(b"k%d" % i, v) for i, v in enumerate(sorted(values))])
        first = asyncio.create_task(member().run())
        deadline = time.monotonic() + 120
        while len(handled) < 20 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        second = asyncio.create_task(member().run())  # joins the group: partitions move
        while set(handled) != values and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        for task in (first, second):
            task.cancel()
        await asyncio.gather(first, second, return_exceptions=True)

    asyncio.run(scenario())
    assert set(handled) == values
    assert asyncio.run(committed_total(settings, Topics.RAW, settings.group_id("test"))) == len(values)


def test_a_failing_prepare_is_retried_like_the_handler_and_the_stage_keeps_consuming(make_settings):
    settings = make_settings(topic_partitions=1)
    asyncio.run(ensure_topics(settings))
    failures, handled = [], []

    async def prepare(records):
        if not failures:
            failures.append(1)
            raise ConnectionError("the check's dependency is away")
        return [r.value for r in records]

    async def handler(prepared) -> None:
        handled.extend(prepared)

    async def scenario() -> None:
        await produce(settings, Topics.RAW, [(None, b"a"), (None, b"b")])
        consumer = BatchConsumer(
            settings, settings.topic(Topics.RAW), "test", handler, max_records=10, within_s=0.1, prepare=prepare
        )
        task = asyncio.create_task(consumer.run())
        deadline = time.monotonic() + 60
        while len(handled) < 2 and not task.done() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    read_before = metrics.MESSAGES_IN.labels("test")._value.get()
    asyncio.run(scenario())
    assert failures == [1] and handled == [b"a", b"b"]
    assert metrics.MESSAGES_IN.labels("test")._value.get() - read_before == 2  # the retry read nothing new
