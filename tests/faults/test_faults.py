"""Fault suite (`make test-faults`; part of `make test`): the real broker on the embedded default
storage (tansu on loopback S3) and real workers on chdb, disturbed the ways issue 15 found.

Every case streams the same input in two chunks, a valid post stream (the bundled sample's
generator) with poison records of every kind interleaved, and disturbs the pipeline between
the chunks. Then it asserts: every valid post exactly once in ClickHouse, every invalid one in
the DLQ with its reason, the same alert transitions as an undisturbed run (computed by the
in-memory harness on the same input), the workers alive until told to stop and stopping by
themselves on SIGTERM, and each worker's peak RSS under `RSS_BOUND_MB`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable

import msgspec
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from pipeline.alerting.watches import load_watches
from pipeline.analysis import ContentAnalyser
from pipeline.harness import Harness, MemoryStore
from pipeline.models.enricher import LexicalEnricher
from pipeline.samples.generate import generate
from pipeline.schemas import Alert, DeadLetter, decode
from pipeline.settings import PROJECT_ROOT, Settings, Topics
from pipeline.stack import EmbeddedStack, free_port
from pipeline.stages import AlertStage, EnrichStage, StoreStage
from pipeline.testing import WorkerProcess, post_messages, produce, settings_env, wait_until
from pipeline.topics import ensure_topics
from tests.integration.kafka_io import committed_total, read_topic

pytestmark = pytest.mark.faults

POSTS = 2_000
IDLE_FLUSH_S = 3.0
RSS_BOUND_MB = 1_500
"""Peak resident memory of a worker (lexical enrichment, chdb in the store/detect worker)."""


def poison() -> list[tuple[str, bytes]]:
    """(expected reason, message) for every kind of bad input on posts.raw."""

    def raw(**fields) -> bytes:
        post = {"schema": "raw_post", "v": 1, "id": "bad", "source": "weibo", "text": "香港游客",
                "created_at": "2015-02-08T10:00:00+08:00"}  # fmt: skip
        post.update(fields)
        return msgspec.json.encode({k: v for k, v in post.items() if v is not ...})

    return [
        ("not_json", b"{this is not json"),
        ("invalid_utf8", b'{"schema":"raw_post","text":"\xff\xfe"}'),
        ("not_an_object", b"[1, 2, 3]"),
        ("unknown_schema", raw(id="v9", v=9)),
        ("missing_field", raw(id="no-schema", schema=...)),
        ("missing_field", raw(id="no-text", text=...)),
        ("wrong_type", raw(id=12345)),
        ("invalid_value", raw(id="year-1", created_at="0001-01-01T00:00:00+08:00")),
        ("invalid_value", raw(id="year-1800", created_at="1800-06-01T00:00:00Z")),
        ("invalid_value", raw(id="year-9999", created_at="9999-12-31T23:59:59-05:00")),
        ("invalid_value", raw(id="likes", metrics={"likes": 2**67})),
        ("invalid_value", raw(id="source", source="Weibo!")),
        ("text_too_long", raw(id="long", text="很" * 5001)),
        ("too_large", raw(id="huge", text="x", url="http://e/" + "a" * (1 << 20))),
    ]


def stream() -> tuple[list, list, set[bytes]]:
    """Two chunks of (key, value[, timestamp]) messages, and the expected dead letters' bytes.
    The duplicate of a post follows its original in the same chunk (the duplicate check is a
    worker's memory: across a restart only redelivery, not a duplicate, is recognised)."""
    posts = generate(seed=7, count=POSTS)
    half = len(posts) // 2
    bad = poison()
    original = posts[-10]
    duplicate = msgspec.structs.replace(original, text="a second message reusing the id")
    first = post_messages(posts[:half]) + [(None, value) for _, value in bad[: len(bad) // 2]]
    second = post_messages(posts[half:]) + [(None, value) for _, value in bad[len(bad) // 2 :]]
    second.append((duplicate.key, duplicate.encode(), int(duplicate.created_at.timestamp() * 1000)))
    expected = Counter(reason for reason, _ in bad) + Counter({"duplicate_id": 1})
    return first, second, expected


def transitions(alerts: list[Alert]) -> set[tuple]:
    return {(a.id, a.state.value, a.window_end, a.observed) for a in alerts}


@pytest.fixture(scope="module")
def reference() -> set[tuple]:
    """The alert transitions of an undisturbed run: the same stages on in-memory topics."""
    first, second, _ = stream()
    settings = Settings(topic_partitions=4, alert_idle_flush_s=0.001)
    store = MemoryStore()
    harness = Harness(settings, [
        EnrichStage(settings, ContentAnalyser(settings, LexicalEnricher.load())),
        StoreStage.of(settings, store),
        AlertStage.of(settings, load_watches(settings.watches_dir), store),
    ])  # fmt: skip

    async def run() -> None:
        await harness.feed(Topics.RAW, first + second)
        await harness.idle()

    asyncio.run(run())
    expected = transitions([decode(r.value, Alert) for r in harness.records(Topics.ALERTS)])
    assert any(state == "resolved" for _, state, _, _ in expected)
    return expected


@pytest.fixture
def case(persistent_stack: EmbeddedStack, tmp_path):
    """Settings in a namespace of their own on the persistent broker, and the workers started."""
    namespace = f"f{os.urandom(4).hex()}."
    settings = Settings(
        kafka_bootstrap_servers=persistent_stack.settings.kafka_bootstrap_servers,
        topic_prefix=namespace,
        app_id=f"pd-{namespace.rstrip('.')}",
        data_dir=tmp_path,
        clickhouse_url=f"chdb://{tmp_path / 'chdb'}",
        metrics_port=free_port(),
        web_port=free_port(),
        enricher="lexical",
        topic_partitions=4,
        alert_idle_flush_s=IDLE_FLUSH_S,
        broker_session_timeout_s=6.0,
    )
    asyncio.run(ensure_topics(settings))
    started: list[WorkerProcess] = []

    def start(stages: tuple[str, ...] = ("enrich", "store", "detect")) -> WorkerProcess:
        ports = {"metrics_port": free_port(), "web_port": free_port()} if started else {}
        worker_settings = settings.model_copy(update={"worker_stages": stages, **ports})
        worker = WorkerProcess(worker_settings, tmp_path / f"worker-{len(started)}.log").start()
        started.append(worker)
        return worker

    yield settings, start, started
    for worker in started:
        if worker.process.poll() is None:
            worker.kill()


def peak_rss_mb(worker: WorkerProcess) -> float:
    for line in open(f"/proc/{worker.process.pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


Disturbance = Callable[[list[WorkerProcess], Callable[[], None]], None]
"""Called between the chunks with the running workers and a function that sends the second chunk
(called after the disturbance unless the disturbance sends it itself, e.g. during a pause)."""


def run_case(case, reference: set[tuple], split: bool, disturb: Disturbance, open_chdb) -> None:
    settings, start, started = case
    first, second, expected_dead = stream()
    if split:  # the store/detect worker owns chdb; enrichment in a worker of its own
        start(("store", "detect"))
        start(("enrich",))
    else:
        start()
    asyncio.run(produce(settings, Topics.RAW, first))
    wait_until(lambda: asyncio.run(committed_total(settings, Topics.RAW, settings.group_id("enrich"))) > 0, 120,
               "the first chunk is being enriched")  # fmt: skip
    sent = []

    def send_second() -> None:
        if not sent:
            sent.append(asyncio.run(produce(settings, Topics.RAW, second)))

    disturb(started, send_second)
    send_second()

    def settled() -> bool:
        alerts = [decode(r.value, Alert) for r in asyncio.run(read_topic(settings, Topics.ALERTS, idle_s=1.0))]
        enriched = len(asyncio.run(read_topic(settings, Topics.ENRICHED, idle_s=1.0)))
        stored = asyncio.run(committed_total(settings, Topics.ENRICHED, settings.group_id("store")))
        return transitions(alerts) >= reference and enriched >= POSTS and stored == enriched

    wait_until(settled, 240, "every post stored and every alert transition out", interval_s=3.0)
    live = [worker for worker in started if worker.process.poll() is None]
    running = {worker.settings.worker_stages: worker for worker in live}
    assert set(running) == ({("store", "detect"), ("enrich",)} if split else {("enrich", "store", "detect")})
    peaks = {stages: peak_rss_mb(worker) for stages, worker in running.items()}
    alerts = [decode(r.value, Alert) for r in asyncio.run(read_topic(settings, Topics.ALERTS, idle_s=1.0))]
    letters = [decode(r.value, DeadLetter) for r in asyncio.run(read_topic(settings, Topics.DLQ, idle_s=1.0))]
    for worker in live:
        worker.stop(timeout_s=settings.shutdown_grace_s + 20)
        assert worker.process.returncode != -signal.SIGKILL, "the worker did not stop by itself on SIGTERM"

    assert transitions(alerts) == reference
    distinct_dead = {(letter.reason.value, letter.topic, letter.partition, letter.offset) for letter in letters}
    assert Counter(reason for reason, *_ in distinct_dead) == expected_dead
    client = open_chdb()
    db = settings.clickhouse_database
    ids = {row[0] for row in client.query(f"SELECT id FROM {db}.posts FINAL").result_rows}
    assert client.query(f"SELECT count() FROM {db}.posts FINAL").result_rows[0][0] == POSTS
    assert ids == {post.id for post in generate(seed=7, count=POSTS)}
    stored_alerts = client.query(f"SELECT id, state, window_end, observed FROM {db}.alerts FINAL").result_rows
    assert len(stored_alerts) == len(reference)
    assert all(peak < RSS_BOUND_MB for peak in peaks.values()), peaks
    print(f"\n  rows {POSTS}, dead letters {dict(sorted(Counter(r for r, *_ in distinct_dead).items()))}, "
          f"{len(reference)} alert transitions, peak RSS MB {({','.join(k): round(v) for k, v in peaks.items()})}")


def test_poison_records_of_every_kind(case, reference, open_chdb):
    run_case(case, reference, False, lambda workers, send_second: None, open_chdb)


@pytest.mark.parametrize("victim", [("enrich",), ("store", "detect")], ids=["enrich-only", "store-detect"])
def test_sigkill_of_each_worker_type(case, reference, open_chdb, victim):
    settings, start, _ = case

    def kill_and_restart(workers: list[WorkerProcess], send_second) -> None:
        worker = next(w for w in workers if w.settings.worker_stages == victim and w.process.poll() is None)
        worker.kill()
        start(victim)

    run_case(case, reference, True, kill_and_restart, open_chdb)


def test_broker_restart_on_the_default_storage(case, reference, persistent_stack, open_chdb):
    def restart_broker(workers: list[WorkerProcess], send_second) -> None:
        persistent_stack.restart_broker(down_s=5.0)

    run_case(case, reference, False, restart_broker, open_chdb)


def test_a_pause_longer_than_the_idle_flush(case, reference, open_chdb):
    """The store/detect worker frozen (SIGSTOP) for three idle flushes, longer than its session,
    while the stream goes on: on waking, what it missed is data not read yet, not quiet."""

    def pause(workers: list[WorkerProcess], send_second) -> None:
        worker = next(w for w in workers if "detect" in w.settings.worker_stages)
        with worker.paused():
            send_second()
            time.sleep(3 * IDLE_FLUSH_S)

    run_case(case, reference, True, pause, open_chdb)


def test_an_alert_delivery_failure(case, reference, open_chdb):
    """The alerts topic is deleted under the running worker before its first alert: deliveries
    fail until the topic exists again (the worker's topic check creates it, or the broker does on
    the producer's metadata request), then every transition goes out once."""
    settings, _, _ = case

    def delete_alerts_topic(workers: list[WorkerProcess], send_second) -> None:
        async def delete() -> None:
            admin = AIOKafkaAdminClient(**settings.kafka_client_kwargs())
            await admin.start()
            try:
                await admin.delete_topics([settings.topic(Topics.ALERTS)])
            finally:
                await admin.close()

        assert asyncio.run(read_topic(settings, Topics.ALERTS, idle_s=0.5)) == []
        asyncio.run(delete())

    run_case(case, reference, False, delete_alerts_topic, open_chdb)
    alerts = asyncio.run(read_topic(settings, Topics.ALERTS, idle_s=1.0))
    assert len(alerts) == len(reference)  # exactly once: the retried delivery sent each transition once


def test_sigterm_ends_a_worker_whose_threads_are_busy(persistent_stack, tmp_path):
    """A stage thread stuck in work (a model, chdb, the engine) cannot be interrupted; the worker
    still exits after SHUTDOWN_GRACE_S instead of waiting for it at interpreter exit."""
    settings = Settings(
        kafka_bootstrap_servers=persistent_stack.settings.kafka_bootstrap_servers, data_dir=tmp_path,
        app_id="pd-busy", shutdown_grace_s=2.0,
    )  # fmt: skip
    script = """
import asyncio, time
from concurrent.futures import ThreadPoolExecutor
import faust
from pipeline.settings import Settings
from pipeline.worker import Worker
settings = Settings()
app = faust.App(settings.app_id, broker="kafka://" + settings.kafka_bootstrap_servers, web_enabled=False)
busy = ThreadPoolExecutor(1)

@app.task
async def work():
    print("busy", flush=True)
    await asyncio.get_running_loop().run_in_executor(busy, time.sleep, 600)

Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False, grace_s=settings.shutdown_grace_s).execute_from_commandline()
"""
    process = subprocess.Popen(
        [sys.executable, "-c", script, "worker"], cwd=PROJECT_ROOT, env=settings_env(settings),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        assert "busy" in process.stdout.readline()  # (after faust's terminal escapes)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 1 and "exiting now" in output
