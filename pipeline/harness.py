"""The worker's stages chained in one process on in-memory topics: no broker, no faust.

In the spirit of bytewax's TestingSource/TestingSink and faust's `test_context`: `MemoryTopics`
stand in for the broker (partitioned by the same murmur2 as Kafka, offsets per partition), and
each stage runs in the same `StageRunner` the worker uses, minus its consumer-group member: the
harness hands it batches and records what it committed. So keys, co-partitioning, dead letters,
the order "deliver, then the stage's acknowledged step, then commit" and the retries of each
step are the production code; only the fetch and the commit are the harness's.

    harness = Harness(settings, [EnrichStage(...), StoreStage.of(...), AlertStage.of(...)])
    await harness.feed(Topics.RAW, messages)
    await harness.run_until_drained()
    await harness.idle()                     # quiet input: the alert engine closes its windows
    harness.records(Topics.ALERTS)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aiokafka.partitioner import DefaultPartitioner

from pipeline.batches import BatchStage, StageRunner
from pipeline.kafka import Headers
from pipeline.settings import Settings, Topics

_PARTITIONER = DefaultPartitioner()


@dataclass(frozen=True)
class MemoryRecord:
    """What the stages read of a Kafka record (the attributes of aiokafka's `ConsumerRecord`)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp: int | None
    headers: Headers = ()


class MemoryTopics:
    """Topics as lists of partitions; a topic is created on first use with `partitions`."""

    def __init__(self, partitions: int):
        self.partitions = partitions
        self.logs: dict[str, list[list[MemoryRecord]]] = {}

    def log(self, topic: str) -> list[list[MemoryRecord]]:
        return self.logs.setdefault(topic, [[] for _ in range(self.partitions)])

    def append(
        self, topic: str, key: bytes | None, value: bytes, timestamp_ms: int | None = None,
        partition: int | None = None, headers: Headers = (),
    ) -> MemoryRecord:  # fmt: skip
        log = self.log(topic)
        if partition is None:
            every = list(range(len(log)))
            partition = _PARTITIONER(key, every, every) if key is not None else 0
        record = MemoryRecord(topic, partition, len(log[partition]), key, value, timestamp_ms, headers)
        log[partition].append(record)
        return record


class MemoryOutbox:
    """`pipeline.kafka.Outbox` on `MemoryTopics`; `failures` makes the next deliveries raise
    (nothing of a failed delivery is appended, as with a refused produce request)."""

    def __init__(self, topics: MemoryTopics, producer: "MemoryProducer"):
        self._topics = topics
        self._producer = producer
        self._messages: list[tuple] = []

    def send(self, topic, key, value, timestamp_s=None, partition=None, headers=()) -> None:
        timestamp_ms = None if timestamp_s is None else int(timestamp_s * 1000)
        self._messages.append((topic, key, value, timestamp_ms, partition, headers))

    def __len__(self) -> int:
        return len(self._messages)

    async def partition_count(self, topic: str) -> int:
        return len(self._topics.log(topic))

    async def delivered(self) -> None:
        messages, self._messages = self._messages, []
        if self._producer.failures > 0:
            self._producer.failures -= 1
            raise ConnectionError("injected: the broker did not acknowledge the batch")
        for message in messages:
            self._topics.append(*message)


class MemoryProducer:
    """Stands in for `pipeline.kafka.SharedProducer`."""

    def __init__(self, topics: MemoryTopics):
        self.topics = topics
        self.failures = 0

    async def outbox(self) -> MemoryOutbox:
        return MemoryOutbox(self.topics, self)


class Harness:
    """Runs `stages` (in the order given: each reads what the one before wrote) on in-memory topics."""

    def __init__(self, settings: Settings, stages: Sequence[BatchStage]):
        self.settings = settings
        self.topics = MemoryTopics(settings.topic_partitions)
        self.producer = MemoryProducer(self.topics)
        self.runners = [StageRunner(settings, stage, self.producer) for stage in stages]  # type: ignore[arg-type]
        self.committed: dict[tuple[str, int], int] = {}  # (stage, partition) -> next offset
        for topic in Topics.ALL:
            self.topics.log(settings.topic(topic))

    async def feed(self, topic: str, messages: Iterable[tuple[bytes | None, bytes] | tuple[bytes | None, bytes, int]]) -> int:
        """Append (key, value[, CreateTime ms]) messages to a topic, as a producer would."""
        count = 0
        for key, value, *stamp in messages:
            self.topics.append(self.settings.topic(topic), key, value, stamp[0] if stamp else None)
            count += 1
        return count

    def records(self, topic: str) -> list[MemoryRecord]:
        return [record for partition in self.topics.log(self.settings.topic(topic)) for record in partition]

    def _next_batch(self, runner: StageRunner) -> list[MemoryRecord]:
        """Up to the stage's batch size, partition by partition, as a fetch returns them."""
        stage = runner.stage
        batch: list[MemoryRecord] = []
        for partition, log in enumerate(self.topics.log(self.settings.topic(stage.topic))):
            start = self.committed.get((stage.name, partition), 0)
            batch += log[start : start + stage.max_records - len(batch)]
        return batch

    async def step(self) -> int:
        """One batch for every stage that has input; returns how many records were handled."""
        handled = 0
        for runner in self.runners:
            batch = self._next_batch(runner)
            if not batch:
                continue
            await runner.handle_batch(await runner.prepare_batch(batch) if runner.stage.prepare else batch)
            for record in batch:  # committed only once the batch was handled, as the worker does
                self.committed[(runner.stage.name, record.partition)] = record.offset + 1
            handled += len(batch)
        return handled

    async def run_until_drained(self) -> None:
        while await self.step():
            pass

    async def idle(self) -> None:
        """Every stage's idle tick with every partition caught up (the input is drained)."""
        await self.run_until_drained()
        everything = frozenset(range(self.settings.topic_partitions))
        for runner in self.runners:
            await runner.idle_tick(everything)


class MemoryStore:
    """The store and detect stages' ClickHouse calls, in memory (a reference run needs no chdb)."""

    def __init__(self):
        self.posts: list[bytes] = []
        self.alerts: list = []
        self.snapshots: dict[str, tuple[int, bytes]] = {}

    def insert_encoded_posts(self, messages: Sequence[bytes]) -> int:
        self.posts.extend(messages)
        return len(messages)

    def insert_alerts(self, alerts: Sequence) -> int:
        self.alerts.extend(alerts)
        return len(alerts)

    def load_alert_state(self, namespace: str) -> tuple[int, bytes] | None:
        return self.snapshots.get(namespace)

    def save_alert_state(self, namespace: str, offset: int, state: bytes) -> None:
        self.snapshots[namespace] = (offset, state)
