"""Batch consumers for the high-volume stages (enrich, store), below faust's per-event path.

faust hands every record through its own event, channel and acknowledgement machinery; measured
here, a bare faust forwarder moves ~3,000 msg/s, a fifth of a plain aiokafka loop, before any
work is done. The two stages that see every post therefore read whole fetches with
`AIOKafkaConsumer.getmany` and hand them to a handler as one list. Offsets are committed only
after the handler returned, i.e. after its outputs were acknowledged by the broker and its
ClickHouse insert returned: at-least-once, made idempotent by the tables (ReplacingMergeTree).
faust still hosts the worker (lifecycle, timers, the alert agent); these run as its tasks.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.structs import ConsumerRecord

from pipeline.settings import Settings
from pipeline.sinks import metrics

log = logging.getLogger(__name__)

RETRY_FIRST_S, RETRY_MAX_S = 0.5, 30.0

BatchHandler = Callable[[Any], Awaitable[None]]
"""Handles one batch (as `prepare` returned it, else the list of records); raises only when the
infrastructure failed, and is then called again with the same batch (so does `prepare`)."""
Headers = list[tuple[str, bytes]] | None
BatchPreparer = Callable[[list[ConsumerRecord]], Awaitable[Any]]


class Outbox:
    """The messages one batch produces, sent as one record batch per topic partition;
    `delivered()` returns once the broker acknowledged them all, so the batch's offsets may then
    be committed.

    aiokafka's per-message `send` costs a future, an accumulator append and a partitioner call in
    Python for every message (a third of an enrich worker's CPU, measured with py-spy);
    `create_batch`/`send_batch` build the same Kafka record batches with one future per partition.
    Keys are partitioned by the Java client's murmur2 partitioner, as `send` would, so every copy
    of a post still lands on one partition; a caller that knows the partition already (a
    co-partitioned output) passes it and saves the hash (~2 us in Python).
    """

    def __init__(self, producer: AIOKafkaProducer):
        self._producer = producer
        self._messages: dict[str, list[tuple[bytes | None, bytes, int | None, int | None, Headers]]] = {}

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        timestamp_s: float | None = None,
        partition: int | None = None,
        headers: Headers = None,
    ) -> None:
        """`headers`: Kafka record headers, a list of (name, bytes) (e.g. CloudEvents attributes)."""
        timestamp_ms = None if timestamp_s is None else int(timestamp_s * 1000)
        self._messages.setdefault(topic, []).append((key, value, timestamp_ms, partition, headers))

    async def partition_count(self, topic: str) -> int:
        return len(await self._producer.partitions_for(topic))

    async def delivered(self) -> None:
        messages, self._messages = self._messages, {}
        pending = []
        for topic, items in messages.items():
            partitions = sorted(await self._producer.partitions_for(topic))
            builders: dict[int, BatchBuilder] = {}
            for key, value, timestamp_ms, partition, headers in items:
                if partition is None:
                    partition = _PARTITIONER(key, partitions, partitions) if len(partitions) > 1 else partitions[0]
                builder = builders.get(partition)
                if builder is None or builder.append(key=key, value=value, timestamp=timestamp_ms, headers=headers) is None:
                    if builder is not None:  # full: it goes, and the message opens the next one
                        pending.append(await self._send(builder, topic, partition))
                    builder = builders[partition] = self._producer.create_batch()
                    builder.append(key=key, value=value, timestamp=timestamp_ms, headers=headers)  # a first message always fits
            for partition, builder in builders.items():
                pending.append(await self._send(builder, topic, partition))
        await asyncio.gather(*pending)

    async def _send(self, builder: BatchBuilder, topic: str, partition: int) -> asyncio.Future:
        builder.close()  # a closed batch is sent at once, without waiting for the producer's linger
        return await self._producer.send_batch(builder, topic, partition=partition)


_PARTITIONER = DefaultPartitioner()


class StageProducer:
    """The batch stages' producer, started on the worker's event loop with the stages (aiokafka
    binds it to the loop it is created on); each batch's sends go through an `Outbox` on it."""

    MAX_BATCH_BYTES = 1 << 20  # an enriched post is ~1 kB: the 16 kB default holds a handful

    def __init__(self, settings: Settings):
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._started = asyncio.Event()

    async def __aenter__(self) -> "StageProducer":
        self._producer = AIOKafkaProducer(
            **self.settings.kafka_client_kwargs(), acks="all", max_batch_size=self.MAX_BATCH_BYTES
        )
        await self._producer.start()
        self._started.set()
        return self

    async def __aexit__(self, *exc_info) -> None:
        self._started.clear()
        await self._producer.stop()

    async def outbox(self) -> Outbox:
        """Waits for the start: a timer may fire before the stages are up."""
        await self._started.wait()
        return Outbox(self._producer)


class SingleOwnerAssignor(RangePartitionAssignor):
    """Every partition to one member of the group (the first by member id), none to the others:
    a stage whose state must see the whole stream (the alert engine) runs once per deployment,
    and a second worker waits as a standby that takes over when the owner leaves the group.
    The group leader computes assignments on the client (standard Kafka), so any broker runs it."""

    name = "single-owner"

    @classmethod
    def assign(cls, cluster, members):
        owner = min(members)
        topics = sorted({topic for metadata in members.values() for topic in metadata.subscription})
        owned = [(topic, sorted(cluster.partitions_for_topic(topic) or ())) for topic in topics]
        return {
            member: ConsumerProtocolMemberAssignment(cls.version, owned if member == owner else [], b"")
            for member in members
        }


class _FinishBatchBeforeRevoke(ConsumerRebalanceListener):
    """A rebalance waits for the batch in hand, so its offsets are committed by the member that
    did the work, and marks batches read before it as stale (their partitions may be gone)."""

    def __init__(self, owner: "BatchConsumer"):
        self._owner = owner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self._owner.in_flight:
            self._owner.generation += 1

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("assigned %s", sorted((tp.topic, tp.partition) for tp in assigned))


Batch = dict[TopicPartition, list[ConsumerRecord]]


class BatchConsumer:
    """One consumer-group member: fetch a batch, await the handler, commit the batch's offsets.

    With `prepare`, the next batch is fetched and prepared while the current one is handled
    (batches are still handled and committed one at a time, in order): the store stage checks
    the next batch's messages in Python while the engine inserts the current one.
    """

    def __init__(
        self, settings: Settings, topic: str, stage: str, handler: BatchHandler, *, max_records: int, within_s: float,
        prepare: BatchPreparer | None = None, assignor: type[RangePartitionAssignor] = RangePartitionAssignor,
    ):  # fmt: skip
        """A batch is handed over when it holds `max_records` or `within_s` after its first record;
        `assignor` shares the topic's partitions among the group's members."""
        self.settings = settings
        self.topic = topic
        self.stage = stage
        self.handler = handler
        self.prepare = prepare
        self.max_records = max_records
        self.within_s = within_s
        self.assignor = assignor
        self.consumer: AIOKafkaConsumer | None = None  # created on the worker's event loop, in run()
        self.in_flight = asyncio.Lock()
        self.generation = 0  # rebalances so far
        self._handed_over_at = 0.0  # event-loop time the last batch went to the handler

    def _create_consumer(self) -> AIOKafkaConsumer:
        settings = self.settings
        return AIOKafkaConsumer(
            **settings.kafka_client_kwargs(),
            group_id=settings.group_id(self.stage),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
            max_partition_fetch_bytes=4 << 20,
            session_timeout_ms=int(settings.broker_session_timeout_s * 1000),
            rebalance_timeout_ms=int(settings.broker_rebalance_timeout_s * 1000),
            heartbeat_interval_ms=1000,
            partition_assignment_strategy=(self.assignor,),
        )

    async def run(self) -> None:
        """Until cancelled; a batch cut short by cancellation is not committed and is redelivered."""
        self.consumer = self._create_consumer()
        self.consumer.subscribe([self.topic], listener=_FinishBatchBeforeRevoke(self))
        await self.consumer.start()
        ahead: asyncio.Future | None = None
        try:
            while True:
                batch, generation, prepared = await (ahead if ahead is not None else self._take_prepared())
                ahead = asyncio.ensure_future(self._take_prepared()) if self.prepare else None
                async with self.in_flight:
                    stale = generation != self.generation
                    if not stale:
                        await self._until_done(self.handler, prepared)
                        await self.consumer.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})
                if stale:  # the batch prepared meanwhile goes too (awaited outside the lock the rebalance holds)
                    self._rewind([batch] + ([(await ahead)[0]] if ahead is not None else []))
                    ahead = None
        finally:
            if ahead is not None:
                ahead.cancel()
            await self.consumer.stop()

    async def _take_prepared(self) -> tuple[Batch, int, Any]:
        batch, generation = await self._take()
        records = [record for partition_records in batch.values() for record in partition_records]
        return batch, generation, await self._until_done(self.prepare, records) if self.prepare else records

    async def _take(self) -> tuple[Batch, int]:
        """Fetches until the batch is full or `within_s` passed since its first record arrived;
        returns it with the rebalance generation it was read in.

        Records already buffered when the take starts arrived while the previous batch was being
        handled, so their window began at its handover: after a handling longer than `within_s`
        they go at once, without a further wait (which would idle the model while a backlog grows).
        Under load the batch grows by itself: everything prefetched meanwhile is there at once, so
        a slow ClickHouse gets fewer, larger inserts."""
        loop = asyncio.get_running_loop()
        generation = self.generation
        taken: Batch = {}
        count = 0

        def add(fetched: Batch) -> None:
            nonlocal count
            for tp, records in fetched.items():
                taken.setdefault(tp, []).extend(records)
                count += len(records)

        add(await self.consumer.getmany(timeout_ms=0, max_records=self.max_records))
        deadline = self._handed_over_at + self.within_s if count else None
        while count < self.max_records:
            wait_s = 1.0 if deadline is None else deadline - loop.time()
            if wait_s <= 0:
                break
            add(await self.consumer.getmany(timeout_ms=int(wait_s * 1000), max_records=self.max_records - count))
            if deadline is None and count:
                deadline = loop.time() + self.within_s
        self._handed_over_at = loop.time()
        return taken, generation

    def _rewind(self, batches: list[Batch]) -> None:
        """Drop batches read across a rebalance: partitions still ours are read again from the
        first record dropped (the new owner of the others starts from the committed offsets)."""
        assigned = self.consumer.assignment()
        first: dict[TopicPartition, int] = {}
        for batch in batches:
            for tp, records in batch.items():
                first[tp] = min(first.get(tp, records[0].offset), records[0].offset)
        for tp, offset in first.items():
            if tp in assigned:
                self.consumer.seek(tp, offset)
        dropped = sum(len(records) for batch in batches for records in batch.values())
        log.warning("%s: dropped %d records read across a rebalance", self.stage, dropped)

    async def _until_done(self, step: Callable[[Any], Awaitable[Any]], batch: Any) -> Any:
        """Stages turn bad records into dead letters, so what raises here is the infrastructure
        (ClickHouse or the broker away) or a bug: retry the same batch with backoff, which also
        stops the stage from consuming further (backpressure; `pd_stage_last_progress_seconds`
        and `pd_batch_retries_total` show it) instead of ending it."""
        for attempt in itertools.count():
            try:
                return await step(batch)
            except Exception:
                delay = min(RETRY_MAX_S, RETRY_FIRST_S * 2**attempt)
                log.exception("%s: batch failed (attempt %d); retrying in %.1f s", self.stage, attempt + 1, delay)
                metrics.BATCH_RETRIES.labels(self.stage).inc()
                await asyncio.sleep(delay)

    async def report_lag(self) -> None:
        if self.consumer is None:
            return
        for tp in self.consumer.assignment():
            highwater = self.consumer.highwater(tp)
            if highwater is not None:
                position = await self.consumer.position(tp)
                metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, highwater - position))
