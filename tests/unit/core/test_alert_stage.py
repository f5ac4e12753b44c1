"""The detect stage's work without a broker: exact state across restarts, idle closing only when the
input is caught up and quiet, resets, posts alerting cannot take."""

from __future__ import annotations

import time

import orjson
import pytest

from pipeline.alerting.watches import load_watches
from pipeline.analysis import ContentAnalyser
from pipeline.models.enricher import LexicalEnricher
from pipeline.schemas import Alert, Reason
from pipeline.samples.generate import generate
from pipeline.settings import Settings
from pipeline.stages import AlertStage, EnrichStage, RawRecord


class MemoryStateStore:
    """The two calls AlertStage makes of ClickHouse, kept in a dict."""

    def __init__(self):
        self.snapshots: dict[str, tuple[int, bytes]] = {}

    def load_alert_state(self, namespace):
        return self.snapshots.get(namespace)

    def save_alert_state(self, namespace, offset, state):
        self.snapshots[namespace] = (offset, state)

    def insert_alerts(self, alerts):
        return len(alerts)


@pytest.fixture(scope="module")
def watch_records() -> list[RawRecord]:
    """The bundled sample, enriched, as records of one partition of posts.enriched."""
    stage = EnrichStage(Settings(), ContentAnalyser(Settings(), LexicalEnricher.load()))
    raw = [RawRecord(p.encode(), "posts.raw", 0, i) for i, p in enumerate(generate(seed=7, count=600))]
    enriched = stage.enrich(raw).enriched
    return [RawRecord(p.encode(), "posts.enriched", 0, i) for i, p in enumerate(enriched)]


DROP = object()
ALL = frozenset(range(4))  # every partition caught up


def spread(records: list[RawRecord], partitions: int = 4) -> list[list[RawRecord]]:
    """The records dealt round-robin over partitions, each with its own offsets."""
    lanes = [records[i::partitions] for i in range(partitions)]
    return [[RawRecord(r.value, r.topic, p, offset) for offset, r in enumerate(lane)] for p, lane in enumerate(lanes)]


def alert_stage(store, idle_flush_s=3600.0) -> AlertStage:
    return AlertStage(load_watches(Settings().watches_dir), store, "ns", idle_flush_s, created_at=Settings().created_at_range())


def run(stage: AlertStage, records, *, until_end: bool = True) -> list[tuple]:
    """Alerts of a run in batches of 50, snapshotting like the agent; `until_end` closes the last windows."""
    alerts = []
    for start in range(0, len(records), 50):
        alerts += stage.detect(records[start : start + 50])[0]
        stage.save()
    if until_end:
        alerts += [Alert.from_payload(p) for p in stage.engine.flush()]
    return [(a.id, a.state, a.window_start, a.observed) for a in alerts]


def test_the_sample_surge_opens_the_hong_kong_alert(watch_records):
    stage = alert_stage(MemoryStateStore(), idle_flush_s=0)
    alerts = stage.detect(watch_records)[0] + stage.advance_if_idle(ALL)
    hk = [a for a in alerts if a.watch == "hk_mainland_tourists"]
    assert [a.state.value for a in hk][:1] == ["open"]
    assert hk[0].observed > 3 * (hk[0].baseline or 0)


def test_restart_from_snapshot_gives_the_alerts_of_an_uninterrupted_run(watch_records):
    uninterrupted = run(alert_stage(MemoryStateStore()), watch_records)

    store = MemoryStateStore()
    first = alert_stage(store)
    before = run(first, watch_records[:300], until_end=False)
    # crash after the snapshot: the broker redelivers from an older committed offset (200)
    restarted = alert_stage(store)
    after = run(restarted, watch_records[200:])
    assert before + after == uninterrupted
    assert any(state.value == "open" for _, state, _, _ in uninterrupted)


def open_windows(stage: AlertStage) -> int:
    state = stage.engine.to_state()
    return sum(len(group["open"]) for watch in state["watches"].values() for group in watch["windows"]["groups"])


def test_idle_stream_closes_windows_once_without_emitting_every_hour_until_today(watch_records):
    stage = alert_stage(MemoryStateStore(), idle_flush_s=0)
    stage.detect(watch_records[:450])  # stop inside the surge: its windows are still open
    assert open_windows(stage) > 0
    started = time.perf_counter()
    closing = stage.advance_if_idle(ALL)
    assert time.perf_counter() - started < 5  # 2015 -> today would be ~100k empty hours per group
    assert open_windows(stage) == 0
    assert {a.state.value for a in closing} >= {"resolved"}  # a quiet day resolves what was open
    assert stage.advance_if_idle(ALL) == []  # and nothing more happens until new posts arrive


def test_a_restart_skips_what_the_snapshot_covers_in_each_partition(watch_records):
    lanes = ["0", "1", "2", "3"]
    by_partition = spread(watch_records)
    interleaved = [r for group in zip(*by_partition) for r in group]  # partitions read side by side
    stage = lambda store: AlertStage(load_watches(Settings().watches_dir), store, "ns", 3600.0, lanes=lanes)  # noqa: E731
    uninterrupted = run(stage(MemoryStateStore()), interleaved)

    store = MemoryStateStore()
    before = run(stage(store), interleaved[:300], until_end=False)
    # the committed offsets lag the snapshot by a different amount in each partition
    redelivered = [r for r in interleaved if r.offset >= {0: 40, 1: 60, 2: 75, 3: 10}[r.partition]]
    after = run(stage(store), redelivered)
    assert before + after == uninterrupted
    assert any(state.value == "open" for _, state, _, _ in uninterrupted)


def test_posts_merged_from_partitions_read_out_of_order_give_the_in_order_alerts(watch_records):
    """A consumer may read one partition days ahead of another; lanes keep those posts from being late."""
    lanes = ["0", "1", "2", "3"]
    in_order = run(alert_stage(MemoryStateStore()), watch_records)
    partition_after_partition = sum(spread(watch_records), [])
    stage = AlertStage(load_watches(Settings().watches_dir), MemoryStateStore(), "ns", 3600.0, lanes=lanes)
    assert run(stage, partition_after_partition) == in_order


def test_lanes_waiting_for_the_stream_to_begin_are_not_retired_before_it_does(watch_records):
    """A worker idle since start, then fed partition after partition: no lane's posts are late.

    (Caught live: the batch enrich stage emits one raw partition's batch before the next, and
    lanes idle since the worker started had been retired before any post arrived.)"""
    lanes = ["0", "1", "2", "3"]
    in_order = run(alert_stage(MemoryStateStore()), watch_records)
    merged = sum(spread(watch_records), [])
    stage = AlertStage(load_watches(Settings().watches_dir), MemoryStateStore(), "ns", 0.2, lanes=lanes)
    time.sleep(0.3)
    assert stage.advance_if_idle(ALL) == []  # the worker's timer ticks before the stream starts
    alerts = []
    for start in range(0, len(merged), 50):
        alerts += stage.detect(merged[start : start + 50])[0]
    alerts += [Alert.from_payload(p) for p in stage.engine.flush()]
    assert stage.engine.late_dropped == 0
    assert [(a.id, a.state, a.window_start, a.observed) for a in alerts] == in_order


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"sentiment_score": "low"}, Reason.WRONG_TYPE),
        ({"topic": DROP}, Reason.MISSING_FIELD),
        ({"created_at": "2015-02-08T10:00:00"}, Reason.INVALID_VALUE),
        ({"schema": "raw_post"}, Reason.UNKNOWN_SCHEMA),
        ({"schema": DROP}, Reason.MISSING_FIELD),
        ({"created_at": "0001-01-01T00:00:00+08:00"}, Reason.INVALID_VALUE),
        ({"created_at": "1800-01-01T00:00:00Z"}, Reason.INVALID_VALUE),
    ],
    ids=["score-not-a-number", "no-topic", "naive-time", "other-schema", "no-schema", "year-1", "year-1800"],
)
def test_a_post_alerting_cannot_read_is_dead_lettered_and_the_rest_counted(watch_records, change, reason):
    good = orjson.loads(watch_records[0].value)
    bad = orjson.dumps({k: v for k, v in {**good, **change}.items() if v is not DROP})
    records = [RawRecord(bad, "posts.enriched", 0, 0)] + [RawRecord(r.value, r.topic, 0, i + 1) for i, r in enumerate(watch_records)]
    alerts, dead = alert_stage(MemoryStateStore(), idle_flush_s=0).detect(records)
    assert [(letter.reason, letter.offset, letter.original) for letter in dead] == [(reason, 0, bad)]
    assert any(alert.watch == "hk_mainland_tourists" for alert in alerts)


def test_a_lane_that_is_behind_is_never_quiet_however_long_it_waits(watch_records):
    """Not read yet is not no data: during a catch-up (or a rebalance) event time must not jump."""
    stage = alert_stage(MemoryStateStore(), idle_flush_s=0.05)
    stage.detect(watch_records[:450])
    before = open_windows(stage)
    for _ in range(3):
        time.sleep(0.06)
        assert stage.advance_if_idle(frozenset()) == []  # partition 0 has records not read yet
    assert open_windows(stage) == before
    time.sleep(0.06)
    stage.advance_if_idle(frozenset({0}))  # caught up now: the quiet time starts here
    assert open_windows(stage) == before
    time.sleep(0.06)
    assert stage.advance_if_idle(frozenset({0})) and open_windows(stage) == 0


def test_a_gap_between_observations_starts_the_quiet_time_afresh(watch_records, monkeypatch):
    """A worker paused for longer than the idle flush (SIGSTOP, a VM stall) saw nothing meanwhile."""
    stage = alert_stage(MemoryStateStore(), idle_flush_s=2.0)
    stage.detect(watch_records[:450])
    clock = [1000.0]
    monkeypatch.setattr("pipeline.stages.time.monotonic", lambda: clock[0])
    stage.advance_if_idle(frozenset({0}))
    clock[0] += 60  # paused for a minute: the first answer after it must not count as a minute of quiet
    assert stage.advance_if_idle(frozenset({0})) == []
    clock[0] += 1
    assert stage.advance_if_idle(frozenset({0})) == []
    clock[0] += 1.5
    assert stage.advance_if_idle(frozenset({0}))  # 2.5 s seen caught up without a break


def test_a_reset_partition_is_read_again_instead_of_skipped(watch_records):
    store = MemoryStateStore()
    first = alert_stage(store)
    run(first, watch_records[:300], until_end=False)
    restarted = alert_stage(store)
    assert restarted.covered(0) == 300
    assert restarted.detect(watch_records[:10]) == ([], [])  # inside the snapshot: skipped
    restarted.reset(0)  # the runner found partition 0's log below the snapshot
    assert restarted.covered(0) is None
    restarted.detect(watch_records[:10])
    assert restarted.covered(0) == 10


def test_a_post_the_engine_fails_on_is_dead_lettered_with_where_it_failed(watch_records, monkeypatch):
    stage = alert_stage(MemoryStateStore(), idle_flush_s=0)
    engine_process = stage.engine.process
    target = orjson.loads(watch_records[3].value)["id"]

    def process(post, lane):
        if post.id == target:
            raise KeyError("a bug in a detector")
        return engine_process(post, lane)

    monkeypatch.setattr(stage.engine, "process", process)
    alerts, dead = stage.detect(watch_records)
    assert [(letter.reason, letter.offset) for letter in dead] == [(Reason.PROCESSING_ERROR, 3)]
    assert "KeyError" in dead[0].detail and "[at " in dead[0].detail
    assert any(alert.watch == "hk_mainland_tourists" for alert in alerts)
