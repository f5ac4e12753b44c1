"""Read a topic back from the real broker (from the beginning, every partition)."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from pipeline.settings import Settings


async def read_topic(
    settings: Settings, name: str, *, expected: int | None = None, idle_s: float = 2.0
) -> list[ConsumerRecord]:
    """All records of `name`; stops at `expected` records, or after `idle_s` without a new one."""
    consumer = AIOKafkaConsumer(
        settings.topic(name), **settings.kafka_client_kwargs(), auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        last_new = time.monotonic()
        while time.monotonic() - last_new < idle_s and (expected is None or len(records) < expected):
            batch = await consumer.getmany(timeout_ms=200)
            for partition_records in batch.values():
                records.extend(partition_records)
                last_new = time.monotonic()
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
    return records
