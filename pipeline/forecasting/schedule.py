"""The scheduled refit in the worker: a faust timer beside the detect stage.

It runs only on the member of the detect group that owns the alert engine (`owns`), so one
worker of a deployment refits, on a thread of its own (the refit is CPU work; the detect stage
keeps its executor). Forecast warnings go out like every alert: on the alerts topic through the
stages' producer, then into ClickHouse `alerts`, where the next refit finds the open episodes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import faust

from pipeline.analytics.attitude import Registry, sync_registry
from pipeline.contract import cloudevent_headers, cloudevent_source
from pipeline.forecasting.service import Refitter
from pipeline.kafka import SharedProducer
from pipeline.settings import Topics
from pipeline.sinks import metrics

log = logging.getLogger(__name__)


def schedule_refits(app: faust.App, runtime, producer: SharedProducer, owns: Callable[[], bool]) -> None:
    """Register the refit timer (`FORECAST_REFIT_S`; 0 disables it) on a store/detect worker's app."""
    settings, sink = runtime.settings, runtime.sink
    if settings.forecast_refit_s <= 0 or sink is None:
        return
    executor = ThreadPoolExecutor(1, thread_name_prefix="forecast")
    refitter = Refitter(sink, settings.clickhouse_database, runtime.watches)
    registry_synced = False
    event_source = cloudevent_source(settings.app_id)

    async def in_executor(work, *args):
        return await asyncio.get_running_loop().run_in_executor(executor, work, *args)

    @app.timer(settings.forecast_refit_s)
    async def refit_forecasts() -> None:
        nonlocal registry_synced
        if not owns():
            return
        try:
            if not registry_synced:
                await in_executor(sync_registry, sink.insert_rows, Registry.load(settings.publics_path))
                registry_synced = True
            result = await in_executor(refitter.refit_if_new)
            if result is None:
                return
            if result.warnings:
                outbox = await producer.outbox()
                for alert in result.warnings:
                    metrics.ALERTS.labels(alert.state.value).inc()
                    headers = cloudevent_headers(alert, event_source)
                    outbox.send(settings.topic(Topics.ALERTS), alert.id.encode(), alert.encode(), headers=headers)
                await outbox.delivered()
                await in_executor(sink.insert_alerts, result.warnings)
                metrics.SINK_ROWS.labels("alerts").inc(len(result.warnings))
            metrics.SINK_ROWS.labels("forecasts").inc(result.rows)
            refitter.last_origin = result.origin  # only now: a failed publication is refit and sent again
            log.info("forecasts refit at %s: %d series, %d warnings", result.origin, result.series, len(result.warnings))
        except Exception:  # a bad refit must not stop the worker; the next tick tries again
            log.exception("forecast refit failed")
