"""Small aiokafka helpers for tests: produce raw bytes, read a topic from the beginning."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from pipeline.settings import Settings


async def produce(settings: Settings, topic: str, messages: Iterable[tuple[bytes | None, bytes]]) -> int:
    producer = AIOKafkaProducer(**settings.kafka_client_kwargs(), acks="all", linger_ms=5, max_request_size=4 << 20)
    await producer.start()
    count = 0
    try:
        for key, value in messages:
            await producer.send(settings.topic(topic), value=value, key=key)
            count += 1
        await producer.flush()
    finally:
        await producer.stop()
    return count


async def read_topic(settings: Settings, topic: str, expect: int, timeout_s: float = 60.0) -> list:
    """All records of a topic from offset 0, waiting until at least `expect` arrived."""
    consumer = AIOKafkaConsumer(
        settings.topic(topic), **settings.kafka_client_kwargs(), auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    records: list = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(records) < expect and loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for batch in batches.values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


async def committed_total(settings: Settings, topic: str) -> int:
    """Sum of the consumer group's committed offsets on a topic.

    Read by a consumer that assigns partitions itself: it never joins the group, so the workers
    are not rebalanced by the look."""
    from aiokafka import TopicPartition

    consumer = AIOKafkaConsumer(**settings.kafka_client_kwargs(), group_id=settings.app_id, enable_auto_commit=False)
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
