"""Prometheus metrics of the worker; names are referenced by deploy/prometheus/rules.yml and Grafana."""

from __future__ import annotations

import asyncio
import bisect
import itertools
import math
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.utils import floatToGoString

MESSAGES_IN = Counter("pd_messages_in", "Messages consumed by a stage", ["stage"])
MESSAGES_OUT = Counter("pd_messages_out", "Messages emitted by a stage", ["stage"])
DLQ = Counter("pd_dlq", "Messages sent to the dead-letter topic", ["reason"])
PROCESSING_SECONDS = Histogram(
    "pd_processing_seconds",
    "Wall time to process one batch in a stage",
    ["stage"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class CountingHistogram:
    """A Prometheus histogram (exposed like prometheus_client's `Histogram`) that takes an
    observation with a count: the posts of a store batch share a few arrival times, and a
    per-post `Histogram.observe` (a lock per bucket) was 5 % of the store worker's CPU (py-spy)."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float], registry=REGISTRY):
        self.name, self.documentation = name, documentation
        self._bounds = tuple(float(bound) for bound in buckets) + (math.inf,)
        self._counts = [0] * len(self._bounds)  # per bucket, not yet cumulative
        self._sum = 0.0
        self._lock = threading.Lock()
        registry.register(self)

    def observe(self, value: float, count: int = 1) -> None:
        with self._lock:
            self._counts[bisect.bisect_left(self._bounds, value)] += count  # the first bucket with le >= value
            self._sum += value * count

    def collect(self) -> Iterator[HistogramMetricFamily]:
        with self._lock:
            cumulative = list(itertools.accumulate(self._counts))
            total = self._sum
        buckets = [(floatToGoString(bound), count) for bound, count in zip(self._bounds, cumulative)]
        yield HistogramMetricFamily(self.name, self.documentation, buckets=buckets, sum_value=total)

    def describe(self) -> list[HistogramMetricFamily]:
        return [HistogramMetricFamily(self.name, self.documentation)]


E2E_LATENCY_SECONDS = CountingHistogram(
    "pd_e2e_latency_seconds",
    "Time from a post's arrival on posts.raw (record timestamp of ingestion) to its ClickHouse insert",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30, 60),
)
CONSUMER_LAG = Gauge("pd_consumer_lag", "Highwater minus consumer position", ["group", "topic", "partition"])
MODEL_PATH = Counter("pd_model_path", "Posts enriched per model path", ["path"])
STAGE_LAST_PROGRESS = Gauge("pd_stage_last_progress_seconds", "Unix time of a stage's last processed batch", ["stage"])
ALERTS = Counter("pd_alerts", "Alert transitions emitted", ["state"])
BATCH_RETRIES = Counter("pd_batch_retries", "Batches a stage had to retry after a failure", ["stage"])
SINK_ROWS = Counter("pd_sink_rows", "Rows inserted into ClickHouse", ["table"])
TOPIC_RESETS = Counter(
    "pd_topic_resets", "Partitions found reset under a stage (log behind its position or snapshot)", ["topic", "partition"]
)
TOPICS_RECREATED = Counter("pd_topics_recreated", "Topics a worker found missing and created again", ["topic"])


class Heartbeat:
    """Liveness of a process's event loop: a timer on the loop beats, and `/healthz` fails once the
    last beat is older than `max_age_s` (the loop is blocked or its tasks are gone), which is what
    a container healthcheck must catch; the metrics thread alone would keep answering."""

    def __init__(self, max_age_s: float = 30.0):
        self.max_age_s = max_age_s
        self._last = time.monotonic()

    def beat(self) -> None:
        self._last = time.monotonic()

    def alive(self) -> bool:
        return time.monotonic() - self._last <= self.max_age_s

    async def keep(self, interval_s: float = 1.0) -> None:
        """Beat from the running event loop until cancelled (run it as a task of the process's loop)."""
        while True:
            self.beat()
            await asyncio.sleep(interval_s)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - scrapes and healthchecks are not worth a log line
        pass


def serve(host: str, port: int, heartbeat: Heartbeat | None = None) -> None:
    """Expose /metrics (and /healthz, answered from `heartbeat`) on its own thread and port, so
    scraping never waits on the event loop."""
    metrics_app = make_wsgi_app(REGISTRY)

    def app(environ, start_response):
        if environ["PATH_INFO"] != "/healthz":
            return metrics_app(environ, start_response)
        alive = heartbeat is None or heartbeat.alive()
        start_response("200 OK" if alive else "503 Service Unavailable", [("Content-Type", "text/plain")])
        return [b"ok\n" if alive else b"event loop stalled\n"]

    server_class = type("MetricsServer", (ThreadingWSGIServer,), {"address_family": socket.AF_INET6 if ":" in host else socket.AF_INET})
    server = make_server(host, port, app, server_class, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
