"""Re-publish a historical time range of a topic into another namespace, at a chosen speed.

Range selection uses the records' own timestamps (CreateTime = the post's ``created_at``, set by
the connectors), never broker time. ``offsets_for_times`` serves only as a starting hint, moved
back by ``skew_s``: on standard Kafka it already answers by CreateTime, on the embedded broker it
answers by write time, which is never earlier than a record's CreateTime (up to clock skew), so
nothing in range lies before the hint on either. Every record from the hint to the end of the
partition is then filtered by timestamp, because CreateTime need not grow with the offset
(backfills). The end of a partition is the larger of ListOffsets "latest" and the high watermark
the first fetch reports (the embedded broker under-reports the former).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timezone

from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.connectors.pacing import Pacer
from pipeline.kafka import create_producer
from pipeline.settings import Settings, Topics
from pipeline.topics import ensure_topics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Selected:
    timestamp_ms: int
    key: bytes | None
    value: bytes


@dataclass
class ReplayStats:
    scanned: int = 0
    produced: int = 0


def in_range(timestamp_ms: int, start: datetime, end: datetime) -> bool:
    """Half-open [start, end) so consecutive ranges never replay a record twice."""
    return int(start.timestamp() * 1000) <= timestamp_ms < int(end.timestamp() * 1000)


async def _start_offsets(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition], start: datetime, skew_s: float
) -> dict:
    """Per partition, where to begin scanning (None: nothing at or after `start` there)."""
    target_ms = int((start.timestamp() - skew_s) * 1000)
    hints = await consumer.offsets_for_times({tp: max(0, target_ms) for tp in partitions})
    return {tp: (hint.offset if hint is not None else None) for tp, hint in hints.items()}


async def select_range(
    settings: Settings,
    topic: str,
    start: datetime,
    end: datetime,
    *,
    skew_s: float = 300.0,
    fetch_timeout_ms: int = 500,
) -> tuple[list[Selected], int]:
    """Records of `topic` (logical name) with start <= timestamp < end, by timestamp; plus the number scanned."""
    name = settings.topic(topic)
    consumer = AIOKafkaConsumer(
        **settings.kafka_client_kwargs(), enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        if name not in await consumer.topics():  # also loads the metadata partitions_for_topic reads
            raise ValueError(f"topic {name} does not exist")
        partitions = [TopicPartition(name, p) for p in sorted(consumer.partitions_for_topic(name) or ())]
        if not partitions:
            raise ValueError(f"topic {name} does not exist")
        starts = await _start_offsets(consumer, partitions, start, skew_s)
        todo = [tp for tp in partitions if starts[tp] is not None]
        consumer.assign(todo)
        for tp in todo:
            consumer.seek(tp, starts[tp])
        latest = await consumer.end_offsets(todo)
        stop_at: dict[TopicPartition, int] = {}
        selected: list[Selected] = []
        scanned = 0
        while todo:
            batches = await consumer.getmany(*todo, timeout_ms=fetch_timeout_ms)
            for records in batches.values():
                for record in records:
                    scanned += 1
                    if in_range(record.timestamp, start, end):
                        selected.append(Selected(record.timestamp, record.key, record.value))
            for tp in list(todo):
                highwater = consumer.highwater(tp)
                if tp not in stop_at and highwater is not None:
                    stop_at[tp] = max(latest[tp], highwater)  # fixed once, so a live topic still ends
                if tp in stop_at and await consumer.position(tp) >= stop_at[tp]:
                    todo.remove(tp)
                    consumer.pause(tp)
    finally:
        await consumer.stop()
    selected.sort(key=lambda s: s.timestamp_ms)
    return selected, scanned


async def replay(
    settings_src: Settings,
    settings_dst: Settings,
    start: datetime,
    end: datetime,
    speed: float = 0.0,
    *,
    topic: str = Topics.RAW,
    skew_s: float = 300.0,
) -> ReplayStats:
    """Copy `topic`'s records with start <= CreateTime < end from src's namespace into dst's, paced by `speed`.

    Keys and timestamps are kept, so the destination partitions and windows like the original.
    """
    if (
        settings_src.topic(topic) == settings_dst.topic(topic)
        and settings_src.kafka_bootstrap_servers == settings_dst.kafka_bootstrap_servers
    ):
        raise ValueError("replay needs a destination namespace of its own (set a different topic_prefix)")
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    selected, scanned = await select_range(settings_src, topic, start, end, skew_s=skew_s)
    log.info("replay: %d of %d scanned records in [%s, %s)", len(selected), scanned, start, end)
    await ensure_topics(settings_dst, (topic,))
    producer = create_producer(settings_dst, client_id="pd-replay")
    pacer = Pacer(speed)
    await producer.start()
    try:
        sends = []
        for record in selected:
            await pacer.wait_for(datetime.fromtimestamp(record.timestamp_ms / 1000, timezone.utc))
            sends.append(
                await producer.send(
                    settings_dst.topic(topic), value=record.value, key=record.key, timestamp_ms=record.timestamp_ms
                )
            )
        await asyncio.gather(*sends)  # raises if the broker refused any record
    finally:
        await producer.stop()
    return ReplayStats(scanned=scanned, produced=len(selected))
