"""The worker's stages chained on in-memory topics (`pipeline.harness`): the bundled sample through
enrich -> store (real chdb) -> detect, no broker. Delivery order of alerts under injected failures."""

from __future__ import annotations

import asyncio
from collections import Counter

import orjson
import pytest

from pipeline.alerting.watches import load_watches
from pipeline.analysis import ContentAnalyser
from pipeline.backoff import Backoff
from pipeline.harness import Harness
from pipeline.models.enricher import LexicalEnricher
from pipeline.samples.generate import generate
from pipeline.schemas import Alert, DeadLetter, decode
from pipeline.settings import Settings, Topics
from pipeline.sinks.clickhouse import ClickHouseSink, migrate
from pipeline.stages import AlertStage, EnrichStage, StoreStage
from pipeline.testing import post_messages

SAMPLE = 600
POISON = {
    "not_json": b"{oops",
    "missing_field": orjson.dumps({"v": 1, "id": "no-schema", "source": "x", "text": "t",
                                   "created_at": "2015-02-08T10:00:00Z"}),  # fmt: skip
    "invalid_value": orjson.dumps({"schema": "raw_post", "v": 1, "id": "year-one", "source": "x", "text": "t",
                                   "created_at": "0001-01-01T00:00:00+08:00"}),  # fmt: skip
}


@pytest.fixture
def sink(open_chdb) -> ClickHouseSink:
    client = open_chdb()
    migrate(client, "pd", ttl_days=30)
    return ClickHouseSink(client, "pd")


def harness(sink: ClickHouseSink, store=None) -> Harness:
    settings = Settings(topic_partitions=4, alert_idle_flush_s=0.001, clickhouse_database=sink.database)
    analyser = ContentAnalyser(settings, LexicalEnricher.load())
    watches = load_watches(settings.watches_dir)
    return Harness(
        settings,
        [EnrichStage(settings, analyser), StoreStage.of(settings, sink), AlertStage.of(settings, watches, store or sink)],
    )


def transitions(alerts: list[Alert]) -> list[tuple]:
    return [(a.id, a.state.value, a.window_end, a.observed) for a in alerts]


def test_the_bundled_sample_runs_through_every_stage_without_a_broker(sink):
    run = harness(sink)
    messages = post_messages(list(generate(seed=7, count=SAMPLE))) + [(None, value) for value in POISON.values()]

    async def scenario() -> None:
        await run.feed(Topics.RAW, messages)
        await run.idle()  # drained, then quiet: the engine closes its windows and resolves

    asyncio.run(scenario())
    assert sink.query("SELECT count(), uniqExact(id) FROM pd.posts FINAL") == [(SAMPLE, SAMPLE)]
    enriched = run.records(Topics.ENRICHED)
    raw_partition = {r.key: r.partition for r in run.records(Topics.RAW) if r.key is not None}
    assert len(enriched) == SAMPLE and all(raw_partition[r.key] == r.partition for r in enriched)  # co-partitioned

    letters = [decode(r.value, DeadLetter) for r in run.records(Topics.DLQ)]
    assert Counter(letter.reason.value for letter in letters) == Counter(POISON.keys())
    assert {letter.reason.value: letter.original for letter in letters} == POISON
    assert {r.key for r in run.records(Topics.DLQ)} == {f"{l.topic}:{l.partition}:{l.offset}".encode() for l in letters}

    alerts = [decode(r.value, Alert) for r in run.records(Topics.ALERTS)]
    hk = [a.state.value for a in alerts if a.watch == "hk_mainland_tourists"]
    assert hk[0] == "open" and hk[-1] == "resolved"
    stored = sink.query("SELECT count() FROM pd.alerts FINAL")[0][0]
    assert stored == len({(a.id, a.state, a.window_end) for a in alerts}) == len(alerts)


class FlakyAlertStore:
    """The sink, with the next `failures` alert inserts raising (ClickHouse away for a moment)."""

    def __init__(self, sink: ClickHouseSink, failures: int):
        self.sink, self.failures = sink, failures

    def load_alert_state(self, namespace):
        return self.sink.load_alert_state(namespace)

    def save_alert_state(self, namespace, offset, state):
        self.sink.save_alert_state(namespace, offset, state)

    def insert_alerts(self, alerts):
        if alerts and self.failures > 0:
            self.failures -= 1
            raise ConnectionError("injected: ClickHouse did not take the alerts")
        return self.sink.insert_alerts(alerts)


def test_alerts_survive_a_failed_delivery_and_a_failed_insert_exactly_once(sink, monkeypatch):
    monkeypatch.setattr("pipeline.batches.RETRY_BACKOFF", Backoff(base_s=0.001, cap_s=0.01))  # retry at once
    messages = post_messages(list(generate(seed=7, count=SAMPLE)))

    undisturbed = harness(sink)
    asyncio.run(undisturbed.feed(Topics.RAW, messages))
    asyncio.run(undisturbed.idle())
    expected = transitions([decode(r.value, Alert) for r in undisturbed.records(Topics.ALERTS)])
    assert any(state == "open" for _, state, _, _ in expected)

    migrate(sink.client, "faults", ttl_days=30)  # one chdb path per process: a database of its own
    other = ClickHouseSink(sink.client, "faults")
    flaky = FlakyAlertStore(other, failures=2)
    run = harness(other, store=flaky)
    detect = run.runners[2]
    original = detect.handle_batch

    async def fail_deliveries_of_alert_batches(prepared):
        run.producer.failures = 2  # the next two deliveries (this batch's alerts) are refused
        await original(prepared)

    detect.handle_batch = fail_deliveries_of_alert_batches

    async def scenario() -> None:
        await run.feed(Topics.RAW, messages)
        await run.idle()

    asyncio.run(scenario())
    assert flaky.failures == 0  # both injected insert failures happened
    emitted = transitions([decode(r.value, Alert) for r in run.records(Topics.ALERTS)])
    assert emitted == expected  # each transition once on the topic, none lost
    assert other.query("SELECT count() FROM faults.alerts FINAL")[0][0] == len(expected)
    snapshot = orjson.loads(other.load_alert_state(run.settings.topic(Topics.ENRICHED))[1])
    assert sum(offset + 1 for offset in snapshot["offsets"].values()) == SAMPLE
