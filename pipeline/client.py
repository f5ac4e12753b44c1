"""A typed subscriber of the `alerts` topic that keeps the newest transition of every alert.

    import asyncio

    from pipeline.client import AlertSubscriber
    from pipeline.settings import Settings

    async def main() -> None:
        async with AlertSubscriber(Settings()) as alerts:
            async for alert in alerts:  # every new transition, validated (`pipeline.schemas.Alert`)
                print(alert.state.value, alert.severity, alert.watch, alert.key, alert.top_terms[:5])
                print(len(alerts.book.firing()), "alerts firing")

    asyncio.run(main())

It reads every partition from the beginning: `alerts` is compacted to the newest transition per
alert id (`pipeline.topics`), so a subscriber first sees the current state and then the live
stream. Delivery is at-least-once and a transition may arrive twice (a worker that crashed
before committing publishes its batch again); `AlertBook` orders the transitions of one alert
by event time and state, so a repeated or stale transition never replaces a newer one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from pipeline.schemas import Alert, AlertState, Rejection, decode_message
from pipeline.settings import Settings, Topics

log = logging.getLogger(__name__)

_STATE_ORDER = {AlertState.OPEN: 0, AlertState.UPDATED: 1, AlertState.RESOLVED: 2}


def is_newer(candidate: Alert, current: Alert | None) -> bool:
    """Whether `candidate` supersedes `current` (same alert): a later event time, or at the same
    time a later state (open < updated < resolved). An equal transition is a redelivery."""
    if current is None:
        return True
    return (candidate.updated_at, _STATE_ORDER[candidate.state]) > (current.updated_at, _STATE_ORDER[current.state])


class AlertBook:
    """The newest transition of every alert seen so far."""

    def __init__(self) -> None:
        self._newest: dict[str, Alert] = {}

    def apply(self, alert: Alert) -> bool:
        """Keep `alert` if it is newer than what is known of its id; False for a repeat or a stale one."""
        if not is_newer(alert, self._newest.get(alert.id)):
            return False
        self._newest[alert.id] = alert
        return True

    def get(self, alert_id: str) -> Alert | None:
        return self._newest.get(alert_id)

    def firing(self) -> list[Alert]:
        """Alerts whose newest transition is not `resolved`, oldest opening first."""
        alive = (a for a in self._newest.values() if a.state is not AlertState.RESOLVED)
        return sorted(alive, key=lambda a: (a.opened_at, a.id))

    def __len__(self) -> int:
        return len(self._newest)

    def __iter__(self) -> Iterator[Alert]:
        return iter(self._newest.values())


@dataclass(frozen=True)
class Delivery:
    """One record of `alerts` as the subscriber read it."""

    record: ConsumerRecord
    alert: Alert | None
    """None when the record is not a valid alert v2 (then `rejection` says why)."""
    rejection: Rejection | None
    newest: bool
    """The alert is a new transition and now the book's newest for its id."""
    replayed: bool
    """Below the offset the subscriber's group had committed when it started: handled by an earlier
    run, read again only to rebuild the book."""


class AlertSubscriber:
    """Reads `alerts` (every partition, from the beginning) into an `AlertBook`.

    Without `group_id` it is a plain reader. With one, `commit()` records how far it has handled
    the topic, and a restarted subscriber marks what it reads below that point as `replayed`
    (the Alertmanager bridge posts only what was not handled, yet rebuilds its book from all).
    Partitions are assigned, not balanced: one subscriber per group sees every alert.
    """

    def __init__(self, settings: Settings, *, group_id: str | None = None, wait_for_topic_s: float = 1.0):
        self.settings = settings
        self.topic = settings.topic(Topics.ALERTS)
        self.group_id = group_id
        self.book = AlertBook()
        self.wait_for_topic_s = wait_for_topic_s
        self._consumer: AIOKafkaConsumer | None = None
        self._handled_below: dict[TopicPartition, int] = {}
        self._positions: dict[TopicPartition, int] = {}

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            **self.settings.kafka_client_kwargs(),
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.settings.kafka_fetch_max_wait_ms,
        )
        await consumer.start()
        try:
            partitions = await self._partitions(consumer)
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            if self.group_id is not None:
                for tp in partitions:
                    self._handled_below[tp] = await consumer.committed(tp) or 0
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        """The topic's partitions, waiting for it to be created (a metadata request for all topics
        never auto-creates one with the broker's defaults)."""
        warned = False
        while True:
            await consumer.topics()
            partitions = consumer.partitions_for_topic(self.topic)
            if partitions:
                return [TopicPartition(self.topic, p) for p in sorted(partitions)]
            if not warned:
                log.warning("waiting for topic %s to be created", self.topic)
                warned = True
            await asyncio.sleep(self.wait_for_topic_s)

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def __aenter__(self) -> "AlertSubscriber":
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.stop()

    async def poll(self, timeout_s: float = 1.0) -> list[Delivery]:
        """The records that arrived within `timeout_s` (possibly none), each applied to the book."""
        fetched = await self._consumer.getmany(timeout_ms=int(timeout_s * 1000))
        deliveries = []
        for tp in sorted(fetched, key=lambda tp: tp.partition):
            handled_below = self._handled_below.get(tp, 0)
            for record in fetched[tp]:
                decoded = decode_message(record.value, Alert)
                replayed = record.offset < handled_below
                if isinstance(decoded, Rejection):
                    deliveries.append(Delivery(record, None, decoded, newest=False, replayed=replayed))
                else:
                    deliveries.append(Delivery(record, decoded, None, newest=self.book.apply(decoded), replayed=replayed))
                self._positions[tp] = record.offset + 1
        return deliveries

    async def commit(self) -> None:
        """Record everything polled so far as handled (needs `group_id`)."""
        if self._positions:
            await self._consumer.commit(dict(self._positions))

    async def __aiter__(self) -> AsyncIterator[Alert]:
        """Every new transition, in the order of its partition; invalid records are logged and skipped."""
        while True:
            for delivery in await self.poll():
                if delivery.rejection is not None:
                    log.warning(
                        "skipping %s:%d:%d: %s (%s)",
                        self.topic, delivery.record.partition, delivery.record.offset,
                        delivery.rejection.reason.value, delivery.rejection.detail,
                    )  # fmt: skip
                elif delivery.newest:
                    yield delivery.alert
