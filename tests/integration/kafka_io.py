"""Small aiokafka helpers for tests: read a topic from the beginning, a group's committed offsets."""

from __future__ import annotations

import time

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from pipeline.settings import Settings


async def read_topic(
    settings: Settings,
    name: str,
    *,
    expected: int | None = None,
    idle_s: float | None = 2.0,
    timeout_s: float = 60.0,
) -> list[ConsumerRecord]:
    """All records of `name` from offset 0. Stops at `expected` records, after `idle_s` without a
    new one (None: keep waiting, for output a worker has yet to write), or at `timeout_s`."""
    consumer = AIOKafkaConsumer(
        settings.topic(name), **settings.kafka_client_kwargs(), auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        started = last_new = time.monotonic()
        while expected is None or len(records) < expected:
            now = time.monotonic()
            if now - started >= timeout_s or (idle_s is not None and now - last_new >= idle_s):
                break
            for partition_records in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(partition_records)
                last_new = time.monotonic()
    finally:
        await consumer.stop()
    return records


async def committed_total(settings: Settings, topic: str, group_id: str) -> int:
    """Sum of a consumer group's committed offsets on a topic.

    Read by a consumer that assigns partitions itself: it never joins the group, so the workers
    are not rebalanced by the look."""
    from aiokafka import TopicPartition

    consumer = AIOKafkaConsumer(**settings.kafka_client_kwargs(), group_id=group_id, enable_auto_commit=False)
    await consumer.start()
    try:
        name = settings.topic(topic)
        await consumer.topics()  # loads the metadata partitions_for_topic reads
        partitions = [TopicPartition(name, p) for p in sorted(consumer.partitions_for_topic(name) or ())]
        consumer.assign(partitions)
        total = 0
        for tp in partitions:
            total += max(0, await consumer.committed(tp) or 0)
        return total
    finally:
        await consumer.stop()
