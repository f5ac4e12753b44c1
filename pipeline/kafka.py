"""The Kafka edge: the one producer factory, the outbox that sends a unit of work's messages and
tells when the broker acknowledged them, and the one dead-letter writer.

Everything that writes to the broker goes through here: the batch stages (`pipeline.batches`),
the connectors, replay, the test and benchmark helpers. "Commit after ack" is one rule for all
of them: a stage commits its input offsets, a connector saves its checkpoint, only after
`Outbox.delivered()` returned.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder

from pipeline.schemas import DeadLetter
from pipeline.settings import Settings, Topics
from pipeline.sinks import metrics

MAX_BATCH_BYTES = 1 << 20
"""Record batch size: an enriched post is ~1 kB, aiokafka's 16 kB default holds a handful."""

Headers = Sequence[tuple[str, bytes]]


def create_producer(settings: Settings, *, client_id: str = "pd-monitor", linger_ms: int = 5) -> AIOKafkaProducer:
    """The pipeline's producer: acks from every in-sync replica, no idempotence (the embedded
    broker has no InitProducerId; redelivery is made harmless downstream instead), requests
    large enough for the biggest raw message the pipeline accepts. Start it on the event loop
    that uses it (aiokafka binds a producer to its loop)."""
    return AIOKafkaProducer(
        **settings.kafka_client_kwargs(),
        client_id=client_id,
        acks="all",
        enable_idempotence=False,
        linger_ms=linger_ms,
        max_batch_size=MAX_BATCH_BYTES,
        max_request_size=max(4 * MAX_BATCH_BYTES, 2 * settings.max_message_bytes),
    )


class Outbox:
    """The messages one unit of work produces, sent as one record batch per topic partition;
    `delivered()` returns once the broker acknowledged them all, so the input's position may
    then be saved (a stage's offsets, a connector's checkpoint).

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
        headers: Headers = (),
    ) -> None:
        """Queue a message (full topic name); `headers` are Kafka record headers (name, bytes)."""
        timestamp_ms = None if timestamp_s is None else int(timestamp_s * 1000)
        self._messages.setdefault(topic, []).append((key, value, timestamp_ms, partition, list(headers)))

    def __len__(self) -> int:
        return sum(len(items) for items in self._messages.values())

    async def partition_count(self, topic: str) -> int:
        return len(await self._producer.partitions_for(topic))

    async def delivered(self) -> None:
        """Send what was queued and wait for every acknowledgement; raises if the broker refused
        any of it (the caller then keeps its position and sends again: at-least-once). What is
        queued during the wait goes with the next call."""
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
                    builder.append(key=key, value=value, timestamp=timestamp_ms, headers=headers)  # a first one fits
            for partition, builder in builders.items():
                pending.append(await self._send(builder, topic, partition))
        if pending:
            await asyncio.wait(pending)  # unlike gather, a cancelled wait leaves the sends running
            for future in pending:
                future.result()  # the first refusal, if any

    async def _send(self, builder: BatchBuilder, topic: str, partition: int) -> asyncio.Future:
        builder.close()  # a closed batch is sent at once, without waiting for the producer's linger
        return await self._producer.send_batch(builder, topic, partition=partition)


_PARTITIONER = DefaultPartitioner()


def dead_letter_key(letter: DeadLetter) -> bytes:
    """Where the rejected input was: a topic position, or a connector's source and item number
    (partition -1). Redelivery of the same input writes the same key."""
    return f"{letter.topic}:{letter.partition}:{letter.offset}".encode()


def send_dead_letter(outbox: Outbox, settings: Settings, letter: DeadLetter) -> None:
    """The one way to the dead-letter topic, for stages and connectors alike: keyed by
    `dead_letter_key`, counted in `pd_dlq_total{reason}` (once the broker has it: count with
    `count_dead_letters` after the outbox was delivered)."""
    outbox.send(settings.topic(Topics.DLQ), dead_letter_key(letter), letter.encode(), letter.failed_at.timestamp())


def count_dead_letters(letters: Sequence[DeadLetter]) -> None:
    for letter in letters:
        metrics.DLQ.labels(letter.reason.value).inc()


class SharedProducer:
    """One producer for a process's stages (or a connector), started and stopped with them; each
    unit of work gets an `Outbox` on it."""

    def __init__(self, settings: Settings, client_id: str = "pd-monitor"):
        self.settings = settings
        self.client_id = client_id
        self._producer: AIOKafkaProducer | None = None
        self._started = asyncio.Event()

    async def __aenter__(self) -> "SharedProducer":
        self._producer = create_producer(self.settings, client_id=self.client_id)
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
