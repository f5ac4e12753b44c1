"""The faust app: the worker's stages as a table, wiring only (the work is in `pipeline.stages`,
the record moving in `pipeline.batches`).

posts.raw --enrich--> posts.enriched --store--> ClickHouse
                 |                  \\--detect--> alerts (+ ClickHouse)
                 \\--> posts.dlq

faust hosts the worker (lifecycle, signal handling, timers); every stage is a `StageRunner`, a
consumer-group member of its own, and they share one producer. A worker runs the stages
`WORKER_STAGES` names: enrichment, the CPU-heavy one, scales out in workers of its own (its
consumer group splits posts.raw between them); detect runs on one member of its group.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import faust
from aiokafka.coordinator.assignors.range import RangePartitionAssignor

from pipeline.alerting.watches import Watch
from pipeline.analysis import Analyser
from pipeline.batches import BatchStage, SingleOwnerAssignor, StageRunner
from pipeline.forecasting.schedule import schedule_refits
from pipeline.kafka import SharedProducer
from pipeline.settings import Settings
from pipeline.sinks import metrics
from pipeline.sinks.clickhouse import ClickHouseSink
from pipeline.stages import AlertStage, EnrichStage, StoreStage
from pipeline.topics import ensure_topics

log = logging.getLogger(__name__)

TOPIC_CHECK_S = 5.0


@dataclass
class Runtime:
    """Heavy resources of one worker, created once before the app starts."""

    settings: Settings
    analyser: Analyser | None
    """None in a worker without the enrich stage."""
    sink: ClickHouseSink | None
    """None in a worker without the store and detect stages: it never opens ClickHouse."""
    watches: list[Watch]


STAGES: dict[str, tuple[Callable[[Runtime], BatchStage], type]] = {
    "enrich": (lambda rt: EnrichStage(rt.settings, rt.analyser), RangePartitionAssignor),
    "store": (lambda rt: StoreStage.of(rt.settings, rt.sink), RangePartitionAssignor),
    # one member of the group owns the alert engine (it must see every partition); others stand by
    "detect": (lambda rt: AlertStage.of(rt.settings, rt.watches, rt.sink), SingleOwnerAssignor),
}
"""Stage name -> (the stage, the partition assignor of its consumer group)."""


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
    app = faust.App(
        settings.app_id,
        **faust_broker_kwargs(settings),
        store="memory://",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        web_enabled=False,
    )
    producer = SharedProducer(settings)
    runners = [
        StageRunner(settings, build(runtime), producer, assignor=assignor)
        for build, assignor in (STAGES[name] for name in settings.worker_stages)
    ]

    detect = next((runner for runner in runners if runner.stage.name == "detect"), None)
    if detect is not None:  # forecasts refit beside the alert engine, on its owner
        schedule_refits(app, runtime, producer, owns=detect.consumer.holds_partitions)

    @app.task
    async def run_stages() -> None:
        async with producer:
            await asyncio.gather(*(runner.run() for runner in runners))

    @app.timer(5.0)
    async def report_consumer_lag() -> None:
        for runner in runners:
            try:
                await runner.report_lag()
            except Exception as exc:  # a gauge must never stop the worker
                log.warning("cannot report the lag of %s: %s", runner.stage.name, exc)

    @app.timer(TOPIC_CHECK_S)
    async def recreate_missing_topics() -> None:
        """A broker that lost its data (or an operator's delete) must not leave the stages
        looping on UnknownTopicOrPartition: the topics are created again, loudly."""
        try:
            created = await ensure_topics(settings)
        except Exception as exc:  # the broker is away: the stages retry on their own, so does this
            log.warning("cannot check the topics: %s", exc)
            return
        for topic in created:
            log.warning("topic %s was missing and has been created again", topic)
            metrics.TOPICS_RECREATED.labels(topic).inc()

    return app
