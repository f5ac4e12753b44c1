"""The faust app: topics, stages and timers, wiring only (the work is in `pipeline.stages`).

posts.raw --enrich--> posts.enriched --store--> ClickHouse
                 |                  \\--detect--> alerts (+ ClickHouse)
                 \\--> posts.dlq

Every stage sees every post (the topic watches match them all), so each runs as a batch
consumer (`pipeline.batches`) hosted by faust, which gives the worker its lifecycle, signal
handling and timers; they share one producer that sends each batch's outputs as record batches.
A batch is committed after its outputs were acknowledged and its ClickHouse insert returned:
at-least-once; ReplacingMergeTree and the alert engine's snapshot offsets make it idempotent.
Blocking work (models, chdb, the alert engine) runs in single-thread executors so the event
loop keeps heartbeating; the sink's lock serialises what reaches chdb.
A worker runs the stages `WORKER_STAGES` names: enrichment, the CPU-heavy one, scales out in
workers of its own (its consumer group splits posts.raw between them).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone

import faust
from aiokafka.structs import ConsumerRecord
from faust.transport.drivers import aiokafka as faust_aiokafka

from pipeline.alerting.watches import Watch
from pipeline.analysis import Analyser
from pipeline.batches import BatchConsumer, Outbox, SingleOwnerAssignor, StageProducer
from pipeline.schemas import Alert, DeadLetter
from pipeline.settings import Settings, Topics
from pipeline.sinks import metrics
from pipeline.sinks.clickhouse import ClickHouseSink
from pipeline.stages import AlertStage, CheckedBatch, EnrichStage, StageOutput, StoreStage

SINK_BATCH_ROWS = 20_000  # ClickHouse pays ~30 ms per insert (parts, views): few large inserts under load
SINK_WITHIN_S = 0.25  # ... and a quarter second at most when the stream is slow (latency)
DETECT_BATCH_POSTS = 20_000  # the alert engine's snapshot is saved once per batch: under load, once per backlog


@dataclass
class Runtime:
    """Heavy resources of one worker, created once before the app starts."""

    settings: Settings
    analyser: Analyser | None
    """None in a worker without the enrich stage."""
    sink: ClickHouseSink | None
    """None in a worker without the store and detect stages: it never opens ClickHouse."""
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
        web_enabled=False,
        key_serializer="raw",
        value_serializer="raw",
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
    )

    producer = StageProducer(settings)

    async def in_executor(executor: ThreadPoolExecutor, work, *args):
        return await asyncio.get_running_loop().run_in_executor(executor, work, *args)

    def dead_letter(outbox: Outbox, letters: list[DeadLetter]) -> None:
        for letter in letters:
            metrics.DLQ.labels(letter.reason.value).inc()
            key = f"{letter.topic}:{letter.partition}:{letter.offset}".encode()
            outbox.send(settings.topic(Topics.DLQ), key, letter.encode())

    def enrich_consumer() -> BatchConsumer:
        model_executor = ThreadPoolExecutor(1, thread_name_prefix="enrich")
        stage = EnrichStage(settings, runtime.analyser)
        raw_topic = settings.topic(Topics.RAW)

        async def enrich(messages: Sequence[ConsumerRecord]) -> StageOutput:
            with metrics.batch("enrich", len(messages)):
                return await in_executor(model_executor, stage.process, messages)

        async def deliver(out: StageOutput) -> None:
            outbox = await producer.outbox()
            dead_letter(outbox, out.dead)
            for path, count in Counter(post.model_path for post in out.enriched).items():
                metrics.MODEL_PATH.labels(path).inc(count)
            enriched_topic = settings.topic(Topics.ENRICHED)
            # co-partitioned: every copy of a key is on one posts.raw partition (the duplicate check
            # relies on it), so it goes to the same posts.enriched one, without hashing the key again
            copartitioned = await outbox.partition_count(enriched_topic) == await outbox.partition_count(raw_topic)
            for post, lane in zip(out.enriched, out.lanes):
                partition = lane if copartitioned else None
                outbox.send(enriched_topic, post.key, post.encode(), post.created_at.timestamp(), partition)
            await outbox.delivered()
            metrics.MESSAGES_OUT.labels("enrich").inc(len(out.enriched))

        return BatchConsumer(  # the next batch is enriched while this one's outputs are delivered
            settings, raw_topic, "enrich", deliver,
            max_records=settings.batch_size, within_s=settings.batch_within_s, prepare=enrich,
        )  # fmt: skip

    def store_consumer() -> BatchConsumer:
        check_executor = ThreadPoolExecutor(1, thread_name_prefix="store-check")  # runs while the engine inserts
        insert_executor = ThreadPoolExecutor(1, thread_name_prefix="clickhouse")
        store_stage = StoreStage(runtime.sink)

        async def check_stored(messages: Sequence[ConsumerRecord]) -> CheckedBatch:
            return await in_executor(check_executor, store_stage.check, messages)

        async def store(checked: CheckedBatch) -> None:
            size = len(checked.accepted) + len(checked.dead)
            with metrics.batch("sink", size):
                out = await in_executor(insert_executor, store_stage.insert, checked)
                outbox = await producer.outbox()
                dead_letter(outbox, out.dead)
                await outbox.delivered()
                inserted = datetime.now(timezone.utc)
                for received_at, count in Counter(checked.received_at).items():  # one time per enrich batch
                    metrics.E2E_LATENCY_SECONDS.observe((inserted - received_at).total_seconds(), count)
                metrics.SINK_ROWS.labels("posts").inc(out.stored)
                metrics.MESSAGES_OUT.labels("sink").inc(out.stored)

        return BatchConsumer(
            settings, settings.topic(Topics.ENRICHED), "store", store,
            max_records=SINK_BATCH_ROWS, within_s=SINK_WITHIN_S, prepare=check_stored,
        )  # fmt: skip

    def detect_consumer() -> BatchConsumer:
        # the engine's own thread: its Python runs while chdb inserts posts (the sink's lock
        # serialises the engine's snapshots and alerts with those inserts)
        detect_executor = ThreadPoolExecutor(1, thread_name_prefix="detect")
        alerting = AlertStage(
            runtime.watches,
            runtime.sink,
            settings.topic(Topics.ENRICHED),
            settings.alert_idle_flush_s,
            lanes=[str(partition) for partition in range(settings.topic_partitions)],
        )

        async def publish(outbox: Outbox, alerts: list[Alert]) -> None:
            for alert in alerts:
                metrics.ALERTS.labels(alert.state.value).inc()
                outbox.send(settings.topic(Topics.ALERTS), alert.id.encode(), alert.encode())
            await in_executor(detect_executor, runtime.sink.insert_alerts, alerts)
            metrics.SINK_ROWS.labels("alerts").inc(len(alerts))
            await in_executor(detect_executor, alerting.save)

        async def detect(messages: Sequence[ConsumerRecord]) -> None:
            with metrics.batch("alerts", len(messages)):
                out = await in_executor(detect_executor, alerting.process, messages)
                outbox = await producer.outbox()
                dead_letter(outbox, out.dead)
                await publish(outbox, out.alerts)
                await outbox.delivered()
                metrics.MESSAGES_OUT.labels("alerts").inc(len(out.alerts))

        @app.timer(5.0)
        async def close_idle_windows():
            alerts = await in_executor(detect_executor, alerting.advance_if_idle)
            if alerts:
                outbox = await producer.outbox()
                await publish(outbox, alerts)
                await outbox.delivered()

        return BatchConsumer(  # one member of the group owns the alert engine; others stand by
            settings, settings.topic(Topics.ENRICHED), "detect", detect,
            max_records=DETECT_BATCH_POSTS, within_s=settings.batch_within_s, assignor=SingleOwnerAssignor,
        )  # fmt: skip

    consumers = {"enrich": enrich_consumer, "store": store_consumer, "detect": detect_consumer}
    batch_stages = [consumers[name]() for name in settings.worker_stages]

    if "detect" in settings.worker_stages:  # forecasts refit beside the alert engine, on its owner
        from pipeline.forecasting.schedule import schedule_refits

        detect = next(consumer for consumer in batch_stages if consumer.stage == "detect")
        schedule_refits(app, runtime, producer, owns=lambda: bool(detect.consumer and detect.consumer.assignment()))

    @app.task
    async def run_batch_stages() -> None:
        async with producer:
            await asyncio.gather(*(consumer.run() for consumer in batch_stages))

    @app.timer(5.0)
    async def report_consumer_lag():
        for consumer in batch_stages:
            await consumer.report_lag()

    return app
