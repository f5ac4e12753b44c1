"""Prometheus metrics of the worker; names are referenced by deploy/prometheus/rules.yml and Grafana."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram, start_http_server

MESSAGES_IN = Counter("pd_messages_in", "Messages consumed by a stage", ["stage"])
MESSAGES_OUT = Counter("pd_messages_out", "Messages emitted by a stage", ["stage"])
DLQ = Counter("pd_dlq", "Messages sent to the dead-letter topic", ["reason"])
PROCESSING_SECONDS = Histogram(
    "pd_processing_seconds",
    "Wall time to process one batch in a stage",
    ["stage"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
E2E_LATENCY_SECONDS = Histogram(
    "pd_e2e_latency_seconds",
    "Time from a post's arrival on posts.raw (record timestamp of ingestion) to its ClickHouse insert",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30, 60),
)
CONSUMER_LAG = Gauge("pd_consumer_lag", "Highwater minus consumer position", ["topic", "partition"])
MODEL_PATH = Counter("pd_model_path", "Posts enriched per model path", ["path"])
STAGE_LAST_PROGRESS = Gauge("pd_stage_last_progress_seconds", "Unix time of a stage's last processed batch", ["stage"])
ALERTS = Counter("pd_alerts", "Alert transitions emitted", ["state"])
BATCH_RETRIES = Counter("pd_batch_retries", "Batches a stage had to retry after a failure", ["stage"])
SINK_ROWS = Counter("pd_sink_rows", "Rows inserted into ClickHouse", ["table"])


def serve(host: str, port: int) -> None:
    """Expose /metrics on its own port so scraping never waits on the event loop."""
    start_http_server(port, addr=host)


@contextmanager
def batch(stage: str, size: int) -> Iterator[None]:
    """Count a batch into a stage and, once handled, its processing time and the stage's progress."""
    started = time.perf_counter()
    MESSAGES_IN.labels(stage).inc(size)
    yield
    PROCESSING_SECONDS.labels(stage).observe(time.perf_counter() - started)
    STAGE_LAST_PROGRESS.labels(stage).set(time.time())
