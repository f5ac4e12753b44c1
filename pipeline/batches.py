"""Batch stages and the runner that moves their records: fetch a batch, hand it to the stage,
send what it returns, commit after the broker acknowledged it.

faust hands every record through its own event, channel and acknowledgement machinery; measured
here, a bare faust forwarder moves ~3,000 msg/s, a fifth of a plain aiokafka loop, before any
work is done. Every stage therefore reads whole fetches with `AIOKafkaConsumer.getmany` in a
`BatchConsumer` (a consumer-group member), and faust only hosts the worker (lifecycle, signals).

A stage (`BatchStage`) is plain code: it takes a batch of records and returns a `StageResult`
(outputs per topic and dead letters). `StageRunner` owns everything around it, the same for
every stage: metrics, dead-letter keys, co-partitioning, sending through an `Outbox`, the
stage's `acknowledged` step (ClickHouse writes that must follow the broker's ack), and the
commit, in that order. Each step is retried with backoff on its own with the same input, so a
failed delivery sends the same outputs again instead of recomputing them: at-least-once, made
idempotent by the tables (ReplacingMergeTree) and the alert engine's snapshot offsets.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.structs import ConsumerRecord

from pipeline.backoff import Backoff
from pipeline.kafka import Headers, SharedProducer, count_dead_letters, send_dead_letter
from pipeline.schemas import DeadLetter
from pipeline.settings import Settings
from pipeline.sinks import metrics

log = logging.getLogger(__name__)

RETRY_BACKOFF = Backoff(base_s=0.5, factor=2.0, cap_s=30.0)
"""A failed step of a batch (broker or ClickHouse away) is retried after this (full jitter)."""

BatchHandler = Callable[[Any], Awaitable[None]]
"""Handles one batch (as `prepare` returned it, else the list of records); raises only when the
infrastructure failed, and is then called again with the same batch (so does `prepare`)."""
BatchPreparer = Callable[[list[ConsumerRecord]], Awaitable[Any]]
IdleHandler = Callable[[frozenset[int]], Awaitable[None]]
"""Called between batches when no record came for a while, with the partitions that are caught
up: a fetch answered in the last few seconds found nothing beyond the consumer's position."""


@dataclass(frozen=True, slots=True)
class Output:
    """One message a stage produces."""

    topic: str
    """Logical name (`Topics.*`); the runner adds the namespace."""
    key: bytes | None
    value: bytes
    timestamp_s: float | None = None
    lane: int | None = None
    """The input partition it came from: an output topic co-partitioned with the input keeps it."""
    headers: Headers = ()


@dataclass
class StageResult:
    """What a stage made of a batch (or of an idle tick)."""

    outputs: list[Output] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    payload: Any = None
    """Whatever the stage's `acknowledged` step needs (the alerts to insert, say)."""


class BatchStage(Protocol):
    """A stage as the runner sees it. `prepare` and `process` run in threads of their own
    (models, chdb and the alert engine block); none of them touches the broker.

    - `prepare(records)`: work that may run ahead, while the previous batch is still being
      delivered (enrich: the models; store: validation). Optional (None).
    - `process(prepared)`: the batch's `StageResult`, in order, one batch at a time.
    - `acknowledged(result)`: after the broker acknowledged the outputs, before the commit
      (detect: insert the alerts into ClickHouse, then save the engine snapshot that covers them).
    - `idle(caught_up)`: between batches when the input is quiet; None = nothing to do.
    - `covered(partition)`: the next offset the stage's own state already covers (the alert
      engine's snapshot), or None; a partition whose log ends below it was reset.
    - `reset(partition)`: the partition's log was reset: forget what the state covers there.
    """

    name: str
    """Consumer group suffix (enrich, store, detect)."""
    upstream: tuple[str, str] | None
    """(stage, its input topic) that writes this stage's input partition by partition, when its
    unread input must count as data not read yet (the detect stage's idle flush); else None."""
    label: str
    """Metric label (enrich, sink, alerts)."""
    topic: str
    """Logical input topic."""
    max_records: int
    within_s: float
    copartitioned: frozenset[str]
    """Output topics whose partition p holds what came from input partition p."""
    prepare: Callable[[Sequence[ConsumerRecord]], Any] | None

    def process(self, prepared: Any) -> StageResult: ...
    def acknowledged(self, result: StageResult) -> None: ...
    def idle(self, caught_up: frozenset[int]) -> StageResult | None: ...
    def covered(self, partition: int) -> int | None: ...
    def reset(self, partition: int) -> None: ...


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
    did the work, and marks batches read before it as stale (their partitions may be gone).
    Between revocation and assignment the member is rebalancing: no idle tick then."""

    def __init__(self, owner: "BatchConsumer"):
        self._owner = owner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self._owner.rebalancing = True
        async with self._owner.in_flight:
            self._owner.generation += 1

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("%s: assigned %s", self._owner.stage, sorted((tp.topic, tp.partition) for tp in assigned))
        self._owner.unchecked = set(assigned)  # each is checked against `covered` once its log end is known
        self._owner.rebalancing = False


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
        idle: IdleHandler | None = None, idle_every_s: float = 1.0, label: str | None = None,
        covered: Callable[[int], int | None] | None = None, on_reset: Callable[[int], Awaitable[None]] | None = None,
    ):  # fmt: skip
        """A batch is handed over when it holds `max_records` or `within_s` after its first record;
        `assignor` shares the topic's partitions among the group's members. `idle` is called
        every `idle_every_s` without records; `covered` and `on_reset` let a stage with state
        of its own (the alert engine) hear that a partition's log was reset under it."""
        self.settings = settings
        self.topic = topic
        self.stage = stage
        self.label = label or stage
        """Metric label (the store stage's is `sink`, the detect stage's `alerts`)."""
        self.handler = handler
        self.prepare = prepare
        self.max_records = max_records
        self.within_s = within_s
        self.assignor = assignor
        self.idle = idle
        self.idle_every_s = idle_every_s
        self.covered = covered
        self.on_reset = on_reset
        self.consumer: AIOKafkaConsumer | None = None  # created on the worker's event loop, in run()
        self.in_flight = asyncio.Lock()
        self.generation = 0  # rebalances so far
        self.rebalancing = True  # until the first assignment
        self.unchecked: set[TopicPartition] = set()
        self._next: dict[TopicPartition, int] = {}  # offset after the last batch handled, per partition
        self._handed_over_at = 0.0  # event-loop time the last batch went to the handler

    def holds_partitions(self) -> bool:
        """Whether this member holds a partition now (a standby of a single-owner group holds none)."""
        return self.consumer is not None and bool(self.consumer.assignment())

    def _create_consumer(self) -> AIOKafkaConsumer:
        settings = self.settings
        return AIOKafkaConsumer(
            **settings.kafka_client_kwargs(),
            group_id=settings.group_id(self.stage),
            enable_auto_commit=False,
            auto_offset_reset="earliest",  # also where a reset partition (offset beyond its end) restarts
            fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
            max_partition_fetch_bytes=4 << 20,
            session_timeout_ms=int(settings.broker_session_timeout_s * 1000),
            rebalance_timeout_ms=int(settings.broker_rebalance_timeout_s * 1000),
            heartbeat_interval_ms=1000,
            metadata_max_age_ms=5000,  # a recreated topic is seen within seconds, not aiokafka's 5 minutes
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
                taking, ahead = (ahead if ahead is not None else self._take_prepared()), None
                batch, generation, prepared = await taking
                if not batch:
                    async with self.in_flight:
                        await self._idle_tick()
                    continue
                ahead = asyncio.ensure_future(self._take_prepared()) if self.prepare else None
                async with self.in_flight:
                    stale = generation != self.generation
                    if not stale:
                        await self._until_done(self.handler, prepared)
                        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
                        await self._until_done(self.consumer.commit, offsets)
                        self._next.update(offsets)
                if stale:  # the batch prepared meanwhile goes too (awaited outside the lock the rebalance holds)
                    self._rewind([batch] + ([(await ahead)[0]] if ahead is not None else []))
                    ahead = None
        finally:
            if ahead is not None:
                ahead.cancel()
            await self.consumer.stop()

    async def _take_prepared(self) -> tuple[Batch, int, Any]:
        batch, generation = await self._take()
        if not batch:
            return batch, generation, None
        await self._check_resets(batch)
        records = [record for partition_records in batch.values() for record in partition_records]
        metrics.MESSAGES_IN.labels(self.label).inc(len(records))  # once per record read, whatever is retried
        return batch, generation, await self._until_done(self.prepare, records) if self.prepare else records

    async def _take(self) -> tuple[Batch, int]:
        """Fetches until the batch is full or `within_s` passed since its first record arrived;
        returns it with the rebalance generation it was read in (an empty batch after
        `idle_every_s` without records, when there is an idle handler).

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
        idle_at = loop.time() + self.idle_every_s
        while count < self.max_records:
            if deadline is None and self.idle is not None and loop.time() >= idle_at:
                return {}, generation
            wait_s = min(1.0, self.idle_every_s) if deadline is None else deadline - loop.time()
            if wait_s <= 0:
                break
            add(await self.consumer.getmany(timeout_ms=int(wait_s * 1000), max_records=self.max_records - count))
            if deadline is None and count:
                deadline = loop.time() + self.within_s
        self._handed_over_at = loop.time()
        return taken, generation

    async def _check_resets(self, batch: Batch) -> None:
        """A partition whose records start below where this member already was, or whose log
        ends below what the stage's state covers, was reset (a broker that lost its data, a
        topic deleted and recreated): the stage hears it before it sees the records, so they are
        processed rather than skipped as already covered."""
        reset = {tp for tp, records in batch.items() if records[0].offset < self._next.get(tp, 0)}
        for tp in list(self.unchecked):
            highwater = self.consumer.highwater(tp)
            if highwater is None:
                continue
            self.unchecked.discard(tp)
            covered = self.covered(tp.partition) if self.covered is not None else None
            if covered is not None and highwater < covered:
                reset.add(tp)
        for tp in sorted(reset):
            log.warning(
                "%s: %s[%d] was reset (records from offset %s, this stage had reached %s); reading it again from there",
                self.stage, tp.topic, tp.partition, batch[tp][0].offset if tp in batch else "?",
                self._next.get(tp) or (self.covered(tp.partition) if self.covered else None),
            )  # fmt: skip
            metrics.TOPIC_RESETS.labels(tp.topic, str(tp.partition)).inc()
            self._next.pop(tp, None)
            if self.on_reset is not None:
                await self.on_reset(tp.partition)

    async def caught_up(self) -> frozenset[int] | None:
        """Partitions whose last fetch, answered within the last few seconds, found nothing past
        the consumer's position: no data, as opposed to data not read yet. None while the group
        rebalances (nothing is known then). A fetch answer older than that (the worker was
        paused, the broker was away) proves nothing."""
        if self.rebalancing or self.consumer is None:
            return None
        fresh_ms = self.settings.kafka_fetch_max_wait_ms + 3000
        now_ms = time.time() * 1000
        caught_up = set()
        for tp in self.consumer.assignment():
            highwater, answered_ms = self.consumer.highwater(tp), self.consumer.last_poll_timestamp(tp)
            if highwater is None or answered_ms is None or now_ms - answered_ms > fresh_ms:
                continue
            if await self.consumer.position(tp) >= highwater:
                caught_up.add(tp.partition)
        return frozenset(caught_up)

    async def _idle_tick(self) -> None:
        caught_up = await self.caught_up()
        if caught_up is not None and self.idle is not None:
            await self._until_done(self.idle, caught_up)

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
                self._next[tp] = min(self._next.get(tp, offset), offset)
        dropped = sum(len(records) for batch in batches for records in batch.values())
        log.warning("%s: dropped %d records read across a rebalance", self.stage, dropped)

    async def _until_done(self, step: Callable[[Any], Awaitable[Any]], batch: Any) -> Any:
        """Stages turn bad records into dead letters, so what raises here is the infrastructure
        (ClickHouse or the broker away) or a bug: retry the same step with backoff, which also
        stops the stage from consuming further (backpressure; `pd_stage_last_progress_seconds`
        and `pd_batch_retries_total` show it) instead of ending it."""
        return await retrying(step, batch, self.label)

    async def report_lag(self) -> None:
        if self.consumer is None:
            return
        group = self.settings.group_id(self.stage)
        for tp in self.consumer.assignment():
            highwater = self.consumer.highwater(tp)
            if highwater is not None:
                position = await self.consumer.position(tp)
                metrics.CONSUMER_LAG.labels(group, tp.topic, str(tp.partition)).set(max(0, highwater - position))


async def retrying(step: Callable[[Any], Awaitable[Any]], argument: Any, stage: str) -> Any:
    """`await step(argument)` until it returns, with jittered backoff between attempts."""
    for attempt in itertools.count():
        try:
            return await step(argument)
        except Exception:
            delay = RETRY_BACKOFF.delay(attempt)
            log.exception("%s: batch step failed (attempt %d); retrying in %.1f s", stage, attempt + 1, delay)
            metrics.BATCH_RETRIES.labels(stage).inc()
            await asyncio.sleep(delay)


class UpstreamWatch:
    """Which partitions the upstream stage (its consumer group) has read to the end.

    A stage fed by another (detect, by enrich) sees its input quiet whenever the upstream stage
    is behind or down, a restart waiting out a dead member's session say: that is data not read
    yet, not no data. The group's committed offsets come from OffsetFetch, the partitions' ends
    from a fetch at those offsets (the high watermark a fetch reports; the embedded broker's
    ListOffsets under-reports the end), so a look costs at most a record batch per partition."""

    def __init__(self, settings: Settings, topic: str, group_id: str):
        self.settings = settings
        self.topic = topic
        self.group_id = group_id
        self._consumer: AIOKafkaConsumer | None = None

    async def caught_up(self) -> tuple[frozenset[int], int]:
        """The partitions read to the end, and how many the topic has."""
        if self._consumer is None:
            self._consumer = AIOKafkaConsumer(
                **self.settings.kafka_client_kwargs(), group_id=self.group_id, enable_auto_commit=False,
                fetch_max_wait_ms=self.settings.kafka_fetch_max_wait_ms, max_partition_fetch_bytes=1024,
            )  # fmt: skip
            await self._consumer.start()  # assigned by hand below: it never joins the group
        consumer = self._consumer
        await consumer.topics()  # loads the metadata partitions_for_topic reads
        partitions = [TopicPartition(self.topic, p) for p in sorted(consumer.partitions_for_topic(self.topic) or ())]
        consumer.assign(partitions)
        committed = {tp: (await consumer.committed(tp)) or 0 for tp in partitions}
        for tp, offset in committed.items():
            consumer.seek(tp, offset)
        asked_ms = time.time() * 1000
        await consumer.getmany(timeout_ms=self.settings.kafka_fetch_max_wait_ms + 500)
        read_to_the_end = frozenset(
            tp.partition
            for tp in partitions
            if (consumer.last_poll_timestamp(tp) or 0) >= asked_ms and committed[tp] >= (consumer.highwater(tp) or 0)
        )
        return read_to_the_end, len(partitions)

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()


class StageRunner:
    """Runs a `BatchStage` as a consumer-group member: its blocking work in threads of its own,
    then, per batch: send the outputs and dead letters, wait for the broker's ack, the stage's
    `acknowledged` step, commit. Keys, metrics and co-partitioning are decided here, once."""

    def __init__(
        self, settings: Settings, stage: BatchStage, producer: SharedProducer, *,
        assignor: type[RangePartitionAssignor] = RangePartitionAssignor,
    ):  # fmt: skip
        self.settings = settings
        self.stage = stage
        self.producer = producer
        # one thread for the ahead-of-time work and one for the in-order work: the store stage
        # checks the next batch while chdb inserts this one, the engine runs while chdb inserts
        self._prepare_executor = ThreadPoolExecutor(1, thread_name_prefix=f"{stage.name}-prepare")
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=stage.name)
        self.consumer = BatchConsumer(
            settings, settings.topic(stage.topic), stage.name, self.handle_batch,
            max_records=stage.max_records, within_s=stage.within_s,
            prepare=self.prepare_batch if stage.prepare is not None else None, assignor=assignor,
            idle=self._idle_when_upstream_agrees, covered=stage.covered, on_reset=self._reset, label=stage.label,
        )  # fmt: skip
        self.upstream = (
            UpstreamWatch(settings, settings.topic(stage.upstream[1]), settings.group_id(stage.upstream[0]))
            if stage.upstream is not None
            else None
        )

    async def _in_thread(self, executor: ThreadPoolExecutor, work: Callable, *args) -> Any:
        return await asyncio.get_running_loop().run_in_executor(executor, work, *args)

    async def prepare_batch(self, records: list[ConsumerRecord]) -> Any:
        return await self._in_thread(self._prepare_executor, self.stage.prepare, records)

    async def handle_batch(self, prepared: Any) -> None:
        started = time.perf_counter()
        result = await retrying(lambda p: self._in_thread(self._executor, self.stage.process, p), prepared, self.stage.label)
        await self._complete(result)
        metrics.PROCESSING_SECONDS.labels(self.stage.label).observe(time.perf_counter() - started)
        metrics.STAGE_LAST_PROGRESS.labels(self.stage.label).set(time.time())

    async def idle_tick(self, caught_up: frozenset[int]) -> None:
        result = await self._in_thread(self._executor, self.stage.idle, caught_up)
        if result is not None:
            await self._complete(result)

    async def _idle_when_upstream_agrees(self, caught_up: frozenset[int]) -> None:
        """Input partition p is quiet only if the upstream stage has read its partition p to the
        end too (the topics are co-partitioned); if their partition counts differ, only if it
        has read every partition."""
        if self.upstream is not None and caught_up:
            try:
                upstream, partitions = await self.upstream.caught_up()
            except Exception as exc:  # the broker is away: nothing is known, nothing moves
                log.warning("%s: cannot tell where the upstream stage is: %s", self.stage.name, exc)
                upstream, partitions = frozenset(), -1
            if partitions == len(self.consumer.consumer.assignment()):
                caught_up &= upstream
            elif len(upstream) != partitions:
                caught_up = frozenset()
        await self.idle_tick(caught_up)

    async def _reset(self, partition: int) -> None:
        await self._in_thread(self._executor, self.stage.reset, partition)

    async def _complete(self, result: StageResult) -> None:
        """Deliver (retried with the same messages until acknowledged), then the stage's own
        step after the ack (retried on its own): nothing is recomputed, so nothing is lost."""
        await retrying(self._deliver, result, self.stage.label)
        await retrying(lambda r: self._in_thread(self._executor, self.stage.acknowledged, r), result, self.stage.label)
        count_dead_letters(result.dead)
        metrics.MESSAGES_OUT.labels(self.stage.label).inc(len(result.outputs))

    async def _deliver(self, result: StageResult) -> None:
        if not result.outputs and not result.dead:
            return
        outbox = await self.producer.outbox()
        input_partitions = await outbox.partition_count(self.settings.topic(self.stage.topic))
        copartitioned = {
            topic
            for topic in {output.topic for output in result.outputs} & self.stage.copartitioned
            if await outbox.partition_count(self.settings.topic(topic)) == input_partitions
        }  # every copy of a key is on one input partition: it goes to the same output one, unhashed
        for output in result.outputs:
            partition = output.lane if output.topic in copartitioned else None
            outbox.send(self.settings.topic(output.topic), output.key, output.value, output.timestamp_s, partition, output.headers)
        for letter in result.dead:
            send_dead_letter(outbox, self.settings, letter)
        await outbox.delivered()

    async def run(self) -> None:
        try:
            await self.consumer.run()
        finally:
            if self.upstream is not None:
                await self.upstream.stop()

    async def report_lag(self) -> None:
        await self.consumer.report_lag()
