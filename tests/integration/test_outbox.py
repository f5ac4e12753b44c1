"""Outbox on the real broker: record batches per partition land where per-message sends would."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaProducer

from pipeline.kafka import Outbox
from pipeline.settings import Topics
from pipeline.testing import produce
from pipeline.topics import ensure_topics
from tests.integration.kafka_io import read_topic

pytestmark = pytest.mark.integration

MESSAGES = 3_000
SMALL_BATCH_BYTES = 16 * 1024  # ~60 messages a batch: the outbox must split every partition's share


def test_outbox_batches_keep_the_partition_order_and_timestamps_of_per_message_sends(make_settings):
    settings = make_settings(topic_partitions=4)
    asyncio.run(ensure_topics(settings, (Topics.RAW, Topics.ENRICHED)))
    sent = [(b"src:%d" % (i % 97), b"%05d" % i + b"." * 200, 1_420_000_000_000 + i) for i in range(MESSAGES)]

    async def send_through_outbox() -> None:
        producer = AIOKafkaProducer(**settings.kafka_client_kwargs(), acks="all", max_batch_size=SMALL_BATCH_BYTES)
        await producer.start()
        try:
            outbox = Outbox(producer)
            for key, value, timestamp_ms in sent:
                outbox.send(settings.topic(Topics.ENRICHED), key, value, timestamp_ms / 1000)
            await outbox.delivered()
        finally:
            await producer.stop()

    asyncio.run(send_through_outbox())
    asyncio.run(produce(settings, Topics.RAW, sent))  # the reference: aiokafka's per-message send
    batched = asyncio.run(read_topic(settings, Topics.ENRICHED, expected=MESSAGES))
    reference = asyncio.run(read_topic(settings, Topics.RAW, expected=MESSAGES))

    def by_partition(records) -> dict[int, list[tuple[bytes, bytes, int]]]:
        out = defaultdict(list)
        for record in records:
            out[record.partition].append((record.key, record.value, record.timestamp))
        return dict(out)

    assert len(batched) == MESSAGES
    assert by_partition(batched) == by_partition(reference)  # same partition per key, send order, timestamps
    assert len(by_partition(batched)) == 4


def test_nothing_is_sent_before_delivered_and_an_empty_outbox_delivers_at_once(make_settings):
    settings = make_settings(topic_partitions=1)
    asyncio.run(ensure_topics(settings, (Topics.ENRICHED,)))

    async def scenario() -> None:
        producer = AIOKafkaProducer(**settings.kafka_client_kwargs(), acks="all")
        await producer.start()
        try:
            await Outbox(producer).delivered()
            outbox = Outbox(producer)
            outbox.send(settings.topic(Topics.ENRICHED), None, b"held")
            assert await read_topic(settings, Topics.ENRICHED, idle_s=1.0) == []
            await outbox.delivered()
        finally:
            await producer.stop()

    asyncio.run(scenario())
    assert [r.value for r in asyncio.run(read_topic(settings, Topics.ENRICHED, expected=1))] == [b"held"]


def test_a_partition_given_by_the_caller_is_kept_in_send_order(make_settings):
    """A co-partitioned output names its partition: the outbox must not hash the key instead."""
    settings = make_settings(topic_partitions=4)
    asyncio.run(ensure_topics(settings, (Topics.ENRICHED,)))
    sent = [(b"same-key", b"%03d" % i, i % 4) for i in range(40)]  # one key: murmur2 alone would pick one partition

    async def send_through_outbox() -> None:
        producer = AIOKafkaProducer(**settings.kafka_client_kwargs(), acks="all")
        await producer.start()
        try:
            outbox = Outbox(producer)
            for key, value, partition in sent:
                outbox.send(settings.topic(Topics.ENRICHED), key, value, partition=partition)
            await outbox.delivered()
        finally:
            await producer.stop()

    asyncio.run(send_through_outbox())
    records = asyncio.run(read_topic(settings, Topics.ENRICHED, expected=len(sent)))
    by_partition = defaultdict(list)
    for record in records:
        by_partition[record.partition].append(record.value)
    assert dict(by_partition) == {p: [v for _, v, q in sent if q == p] for p in range(4)}


def test_record_headers_reach_the_consumer(make_settings):
    """Alerts may carry CloudEvents attributes as Kafka headers: the outbox passes them through."""
    settings = make_settings(topic_partitions=2)
    asyncio.run(ensure_topics(settings, (Topics.ALERTS,)))
    headers = [("ce_specversion", b"1.0"), ("ce_type", b"org.pd-monitor.alert")]

    async def send() -> None:
        producer = AIOKafkaProducer(**settings.kafka_client_kwargs(), acks="all")
        await producer.start()
        try:
            outbox = Outbox(producer)
            outbox.send(settings.topic(Topics.ALERTS), b"a1", b"{}", headers=headers)
            outbox.send(settings.topic(Topics.ALERTS), b"a2", b"{}")
            await outbox.delivered()
        finally:
            await producer.stop()

    asyncio.run(send())
    records = {r.key: r for r in asyncio.run(read_topic(settings, Topics.ALERTS, expected=2))}
    assert list(records[b"a1"].headers) == headers and not records[b"a2"].headers
