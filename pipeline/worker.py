"""Build a worker's runtime (model, ClickHouse, metrics) and run the faust app until stopped."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable

import faust

from pipeline.alerting.watches import load_watches
from pipeline.analysis import Analyser, ContentAnalyser
from pipeline.app import Runtime, create_app
from pipeline.settings import Settings
from pipeline.sinks import metrics
from pipeline.sinks.clickhouse import ClickHouseSink
from pipeline.topics import ensure_topics

log = logging.getLogger(__name__)


def load_analyser(settings: Settings) -> ContentAnalyser:
    """The model tier `ENRICHER` names (auto: the learned model once `make models` has built it,
    else the lexical model)."""
    from pipeline.models.enricher import MANIFEST, LearnedEnricher, LexicalEnricher, TransformerEnricher

    built = (settings.model_dir / MANIFEST).exists()
    common = {"examples_path": settings.topic_examples_path}
    if settings.enricher == "transformer":
        model = TransformerEnricher.load(settings.model_dir, settings.taxonomy_path, **common)
    elif settings.enricher == "learned" or (settings.enricher == "auto" and built):
        model = LearnedEnricher.load(settings.model_dir, settings.taxonomy_path, **common)
    else:
        log.warning("using the lexical enricher (ENRICHER=%s, models built: %s)", settings.enricher, built)
        model = LexicalEnricher.load(settings.taxonomy_path, settings.model_dir, **common)
    return ContentAnalyser(settings, model)


AnalyserFactory = Callable[[Settings], Analyser]


def build_runtime(settings: Settings, analyser: AnalyserFactory = load_analyser) -> Runtime:
    """Only what the worker's stages use: an enrich-only worker loads no ClickHouse (in embedded
    mode another process owns the chdb path), a store/detect worker no model."""
    stages = set(settings.worker_stages)
    return Runtime(
        settings=settings,
        analyser=analyser(settings) if "enrich" in stages else None,
        sink=ClickHouseSink.open(settings) if stages & {"store", "detect"} else None,
        watches=load_watches(settings.watches_dir),
    )


def serve_dashboard(app: faust.App, runtime: Runtime) -> None:
    """The built-in dashboard lives in the worker: in embedded mode only this process may open chdb."""
    from aiohttp import web

    from pipeline.web.server import create_app as create_web_app

    @app.task
    async def dashboard() -> None:
        runner = web.AppRunner(
            create_web_app(runtime.sink.query, runtime.settings.clickhouse_database), access_log=None
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, runtime.settings.metrics_host, runtime.settings.web_port).start()
            await asyncio.Event().wait()  # until the worker stops and cancels this task
        finally:
            await runner.cleanup()


class Worker(faust.Worker):
    """faust's worker with a bounded shutdown. The stages' blocking work (models, chdb, the alert
    engine) runs in executor threads that a signal cannot interrupt, and Python waits for them at
    exit; so a SIGTERM/SIGINT also arms a watchdog that ends the process `grace_s` later, whatever
    is still running. Nothing is lost by it: offsets are committed only after a batch's work, so
    an interrupted batch is read again by the next owner, as after a crash."""

    def __init__(self, *args, grace_s: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.grace_s = grace_s

    def install_signal_handlers(self) -> None:
        super().install_signal_handlers()
        for sig, stop in ((signal.SIGTERM, self._on_sigterm), (signal.SIGINT, self._on_sigint)):
            self.loop.add_signal_handler(sig, self._stop_within_grace, stop)

    def _stop_within_grace(self, stop: Callable[[], None]) -> None:
        threading.Thread(target=self._exit_after_grace, name="shutdown-watchdog", daemon=True).start()
        stop()

    def _exit_after_grace(self) -> None:
        threading.Event().wait(self.grace_s)
        log.warning("still busy %.0f s after the stop signal: exiting now", self.grace_s)
        sys.stderr.flush()
        os._exit(1)


def run_worker(
    settings: Settings,
    extra: Callable[[faust.App, Runtime], None] | None = None,
    analyser: AnalyserFactory = load_analyser,
) -> None:
    """Blocks until SIGINT/SIGTERM. `extra` may add tasks (e.g. the sample feed of `pipeline run`);
    `analyser` replaces the content analysis (`bench.pipeline` times the plumbing without it)."""
    asyncio.run(ensure_topics(settings))
    runtime = build_runtime(settings, analyser)
    heartbeat = metrics.Heartbeat()
    metrics.serve(settings.metrics_host, settings.metrics_port, heartbeat)
    app = create_app(runtime)

    @app.task
    async def keep_beating() -> None:  # the worker's liveness (/healthz): its event loop runs
        await heartbeat.keep()

    if runtime.sink is not None:
        serve_dashboard(app, runtime)
    if extra is not None:
        extra(app, runtime)
    # logging is set up once per process (`pipeline.logs`, LOG_LEVEL / LOG_FORMAT); faust would replace it
    worker = Worker(app, quiet=True, redirect_stdouts=False, override_logging=False, grace_s=settings.shutdown_grace_s)
    # faust's terminal spinner sets the root logger to DEBUG so it can spin on every record; aiokafka
    # then formats a debug line per produced message, which costs ~15 % of the event loop
    worker.spinner = None
    try:
        worker.execute_from_commandline()
    finally:
        if runtime.sink is not None:
            runtime.sink.close()
