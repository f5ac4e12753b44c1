"""The faust app: topics and agents, wiring only (the work is in `pipeline.stages`).

posts.raw --enrich--> posts.enriched --store--> ClickHouse
                 |--> posts.dlq
                 \\--> posts.watch (posts a watch matches) --detect--> alerts (+ ClickHouse)

Every agent batches with ``take_events``; faust acks a batch only when the agent asks for the
next one, i.e. after its outputs were sent and its ClickHouse insert returned, and flushes the
producer before committing offsets. That is at-least-once; ReplacingMergeTree makes it idempotent.
Blocking work (models, chdb) runs in single-thread executors so the event loop keeps heartbeating.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from pipeline.alerting.watches import Watch
from pipeline.schemas import Alert, DeadLetter, EnrichedPost, Reason, Rejection, decode
from pipeline.settings import Settings, Topics
from pipeline.sinks import metrics
from pipeline.sinks.clickhouse import ClickHouseSink
from pipeline.stages import (
    AlertStage,
    Enricher,
    EnrichStage,
    RawRecord,
    dead_letter_for,
)

SINK_BATCH_ROWS = 5000
SINK_WITHIN_S = 0.25
PRODUCER_LINGER_MS = 20  # batch sends: faust otherwise writes one produce request per message
PRODUCER_MAX_BATCH_BYTES = 1 << 20  # an enriched post is ~1 kB: the 16 kB default holds a handful


@dataclass
class Runtime:
    """Heavy resources of one worker, created once before the app starts."""

    settings: Settings
    enricher: Enricher
    sink: ClickHouseSink
    watches: list[Watch]


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport):
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = self.app.fetch_max_wait_ms  # read by aiokafka when the consumer starts
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self):
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class App(faust.App):
    """faust's app with a configurable consumer fetch wait instead of its fixed 1.5 s.

    A fetch on Apache Kafka is a long-poll that returns as soon as data arrives; the embedded
    broker (tansu) answers only when the wait expires, so every hop between agents added ~0.5 s.
    """

    def __init__(self, *args, fetch_max_wait_ms: int, **kwargs):
        self.fetch_max_wait_ms = fetch_max_wait_ms
        super().__init__(*args, **kwargs)

    def _new_transport(self):
        return _Transport(self.conf.broker_consumer, self)


def faust_broker_kwargs(settings: Settings) -> dict:
    kwargs: dict = {"broker": ";".join(f"kafka://{hp}" for hp in settings.kafka_bootstrap_servers.split(","))}
    protocol = settings.kafka_security_protocol
    if protocol.startswith("SASL"):
        kwargs["broker_credentials"] = faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None,
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=settings.ssl_context() if protocol == "SASL_SSL" else None,
        )
    elif protocol == "SSL":
        kwargs["broker_credentials"] = faust.SSLCredentials(settings.ssl_context())
    return kwargs


def record_of(event) -> RawRecord:
    message = event.message
    return RawRecord(
        value=message.value, topic=message.topic, partition=message.partition, offset=message.offset, key=message.key
    )


def create_app(runtime: Runtime) -> faust.App:
    settings = runtime.settings
    app = App(
        settings.app_id,
        **faust_broker_kwargs(settings),
        store="memory://",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_rebalance_timeout=settings.broker_rebalance_timeout_s,
        broker_heartbeat_interval=1.0,
        producer_acks=-1,
        producer_linger_ms=PRODUCER_LINGER_MS,
        producer_max_batch_size=PRODUCER_MAX_BATCH_BYTES,
        web_enabled=False,
        key_serializer="raw",
        value_serializer="raw",
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
    )

    def topic(name: str) -> faust.TopicT:
        return app.topic(
            settings.topic(name), key_type=bytes, value_type=bytes, partitions=Topics.partitions(name, settings)
        )

    raw_topic, enriched_topic, dlq_topic = topic(Topics.RAW), topic(Topics.ENRICHED), topic(Topics.DLQ)
    watch_topic, alerts_topic = topic(Topics.WATCH), topic(Topics.ALERTS)
    model_executor = ThreadPoolExecutor(1, thread_name_prefix="enrich")
    sink_executor = ThreadPoolExecutor(1, thread_name_prefix="clickhouse")
    stage = EnrichStage(settings, runtime.enricher, runtime.watches)
    alerting = AlertStage(
        runtime.watches,
        runtime.sink,
        settings.topic(Topics.WATCH),
        settings.alert_idle_flush_s,
        lanes=[str(partition) for partition in range(Topics.partitions(Topics.RAW, settings))],
    )

    async def emit(topic: faust.TopicT, key: bytes, value: bytes, timestamp: float | None = None) -> None:
        """Queue a record on faust's producer, below its per-message channel machinery.

        faust flushes this producer before every offset commit, so outputs are durable before
        the inputs that produced them are committed (at-least-once)."""
        await app.producer.send(topic.get_topic_name(), key, value, None, timestamp, None)

    async def dead_letter(letters: list[DeadLetter]) -> None:
        for letter in letters:
            metrics.DLQ.labels(letter.reason.value).inc()
            await emit(dlq_topic, f"{letter.topic}:{letter.partition}:{letter.offset}".encode(), letter.encode())

    @app.agent(raw_topic, name="enrich")
    async def enrich(stream):
        loop = asyncio.get_running_loop()
        async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
            with metrics.batch("enrich", len(events)):
                out = await loop.run_in_executor(model_executor, stage.process, [record_of(e) for e in events])
                await dead_letter(out.dead)
                for post in out.enriched:
                    metrics.MODEL_PATH.labels(post.model_path).inc()
                    await emit(enriched_topic, post.key, post.encode(), post.created_at.timestamp())
                for partition, post in out.watched:  # the key names the lane: the input partition
                    await emit(watch_topic, str(partition).encode(), post.encode(), post.created_at.timestamp())
                metrics.MESSAGES_OUT.labels("enrich").inc(len(out.enriched))

    @app.agent(enriched_topic, name="store")
    async def store(stream):
        loop = asyncio.get_running_loop()
        async for events in stream.take_events(SINK_BATCH_ROWS, within=SINK_WITHIN_S):
            with metrics.batch("sink", len(events)):
                posts, unreadable = [], []
                for event in events:
                    try:
                        posts.append(decode(event.message.value, EnrichedPost))
                    except ValueError as exc:  # written by an incompatible producer; keep it, don't crash
                        detail = f"unreadable enriched post: {exc}"
                        unreadable.append(dead_letter_for(Rejection(reason=Reason.PROCESSING_ERROR, detail=detail), record_of(event)))
                await dead_letter(unreadable)
                await loop.run_in_executor(sink_executor, runtime.sink.insert_posts, posts)
                inserted = datetime.now(timezone.utc)
                for post in posts:
                    metrics.E2E_LATENCY_SECONDS.observe((inserted - post.received_at).total_seconds())
                metrics.SINK_ROWS.labels("posts").inc(len(posts))
                metrics.MESSAGES_OUT.labels("sink").inc(len(posts))

    async def publish(alerts: list[Alert]) -> None:
        loop = asyncio.get_running_loop()
        for alert in alerts:
            metrics.ALERTS.labels(alert.state.value).inc()
            await emit(alerts_topic, alert.id.encode(), alert.encode())
        await loop.run_in_executor(sink_executor, runtime.sink.insert_alerts, alerts)
        metrics.SINK_ROWS.labels("alerts").inc(len(alerts))
        await loop.run_in_executor(sink_executor, alerting.save)

    @app.agent(watch_topic, name="detect")
    async def detect(stream):
        loop = asyncio.get_running_loop()
        async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
            with metrics.batch("alerts", len(events)):
                out = await loop.run_in_executor(sink_executor, alerting.process, [record_of(e) for e in events])
                await dead_letter(out.dead)
                await publish(out.alerts)
                metrics.MESSAGES_OUT.labels("alerts").inc(len(out.alerts))

    @app.timer(5.0)
    async def close_idle_windows():
        alerts = await asyncio.get_running_loop().run_in_executor(sink_executor, alerting.advance_if_idle)
        if alerts:
            await publish(alerts)

    @app.timer(5.0)
    async def report_consumer_lag():
        consumer = app.consumer
        for tp in consumer.assignment():
            position = await consumer.position(tp)
            highwater = consumer.highwater(tp)
            if position is not None and highwater is not None:
                metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, highwater - position))

    return app
