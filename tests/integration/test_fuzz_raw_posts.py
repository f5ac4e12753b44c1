"""Property: whatever bytes arrive on posts.raw, each message ends as exactly one ClickHouse row or
exactly one dead letter with a reason, and no input reaches a stage as an unhandled error.

Hypothesis generates batches of raw messages (posts with every field drawn from valid values,
wrong types, extreme integers and dates from year 1 to 9999 in any zone, missing or unknown
fields and envelopes, plus arbitrary JSON and bytes), runs them through the enrich stage, the
store stage against the real chdb engine and the detect stage, and checks every message's fate.
The counts by outcome are printed at the end (README, "Dead letters").
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pipeline.alerting.watches import load_watches
from pipeline.analysis import ContentAnalyser
from pipeline.harness import MemoryStore
from pipeline.models.enricher import LexicalEnricher
from pipeline.settings import Settings
from pipeline.sinks.clickhouse import ClickHouseSink, connect, migrate
from pipeline.stages import AlertStage, EnrichStage, RawRecord, StoreStage

pytestmark = pytest.mark.integration

EXAMPLES, BATCH = 120, 100  # >= 10,000 messages (+ a redelivered-looking copy per batch)
OUTCOMES: Counter[str] = Counter()
SETTINGS = Settings(max_text_chars=300, max_message_bytes=4096)
ZONES = st.sampled_from([timezone.utc, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5)),
                         timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))])  # fmt: skip
ANY_TIME = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=ZONES)
RECENT = st.datetimes(min_value=datetime(2009, 1, 1), max_value=datetime(2026, 1, 1), timezones=ZONES)
TIMES = st.one_of(
    RECENT.map(datetime.isoformat), ANY_TIME.map(datetime.isoformat),
    st.datetimes(min_value=datetime(2009, 1, 1), max_value=datetime(2026, 1, 1)).map(datetime.isoformat),  # naive
    st.text(max_size=25), st.integers(), st.none(),
)  # fmt: skip
COUNTS = st.one_of(
    st.integers(0, 10**6), st.integers(-(2**70), 2**70), st.none(), st.floats(allow_nan=False), st.text(max_size=4)
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)
MISSING = object()

VALID = st.fixed_dictionaries({
    "schema": st.just("raw_post"),
    "v": st.just(1),
    "id": st.uuids().map(str),
    "source": st.sampled_from(["weibo", "x", "wechat", "rss"]),
    "text": st.one_of(st.text(max_size=80), st.sampled_from(["香港 内地游客 冲突 #光复屯门#", "Russia China energy deal"])),
    "created_at": RECENT.map(datetime.isoformat),
    "lang": st.sampled_from(["zh", "en", "ru", None]),
    "metrics": st.fixed_dictionaries({}, optional={"likes": st.integers(0, 10**6), "pageviews": st.integers(0, 2**63 - 1)}),
})  # fmt: skip
BROKEN = st.one_of(  # (field, what replaces it): a wrong value, an extreme one, or nothing at all
    st.tuples(st.sampled_from(["schema", "v", "id", "source", "text", "created_at", "lang", "metrics"]), st.just(MISSING)),
    st.tuples(st.sampled_from(["schema", "v", "id", "source", "text", "lang", "metrics", "colour"]), JSON),
    st.tuples(st.just("schema"), st.sampled_from(["tweet", "enriched_post", ""])),
    st.tuples(st.just("v"), st.sampled_from([0, 2, "1", 1.0])),
    st.tuples(st.just("id"), st.text(max_size=300)),
    st.tuples(st.just("source"), st.text(max_size=40)),
    st.tuples(st.just("text"), st.just("x" * 301)),
    st.tuples(st.just("created_at"), TIMES),
    st.tuples(st.just("metrics"), st.fixed_dictionaries({}, optional={"likes": COUNTS, "pageviews": COUNTS, "views": COUNTS})),
)  # fmt: skip
POST = st.tuples(VALID, st.one_of(st.just([]), st.just([]), st.lists(BROKEN, min_size=1, max_size=2))).map(
    lambda drawn: {**drawn[0], **dict(drawn[1])}
)


def encoded(post: dict) -> bytes:
    return msgspec.json.encode({k: v for k, v in post.items() if v is not MISSING})  # integers of any size


MESSAGES = st.one_of(
    POST.map(encoded), POST.map(encoded), POST.map(encoded), POST.map(encoded),
    JSON.map(msgspec.json.encode), st.binary(max_size=64), POST.map(lambda p: encoded(p)[:-3]),
)  # fmt: skip


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    client = connect(f"chdb://{tmp_path_factory.mktemp('fuzz') / 'chdb'}")
    migrate(client, "pd", ttl_days=30)
    sink = ClickHouseSink(client, "pd")
    analyser = ContentAnalyser(SETTINGS, LexicalEnricher.load())
    detect = AlertStage.of(SETTINGS, load_watches(SETTINGS.watches_dir), MemoryStore())
    yield analyser, StoreStage.of(SETTINGS, sink), detect, sink
    client.close()
    print(f"\nfuzz: {sum(OUTCOMES.values())} messages -> " + ", ".join(f"{k} {n}" for k, n in OUTCOMES.most_common()))


COUNTER = itertools.count()


@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.large_base_example])  # fmt: skip
@given(batch=st.lists(MESSAGES, min_size=BATCH, max_size=BATCH))
def test_every_raw_message_ends_as_one_row_or_one_dead_letter(stages, batch):
    analyser, store, detect, sink = stages
    enrich = EnrichStage(SETTINGS, analyser)  # duplicate ids within the batch; Hypothesis repeats ids across batches
    base = next(COUNTER) * (BATCH + 1)  # offsets keep growing: a message is never a redelivery of an earlier one
    batch = [*batch, batch[0]]  # the first message again at another offset: a valid post's copy is a duplicate_id
    records = [RawRecord(value, "posts.raw", 0, base + i) for i, value in enumerate(batch)]

    enriched = enrich.enrich(records)
    dead = {letter.offset: letter.reason.value for letter in enriched.dead}
    assert len(enriched.enriched) + len(dead) == len(records)  # one outcome each

    stored_records = [RawRecord(post.encode(), "posts.enriched", 0, base + i) for i, post in enumerate(enriched.enriched)]
    out = store.insert(store.check(stored_records))
    refused = {letter.offset for letter in out.dead}
    assert out.stored + len(refused) == len(stored_records)
    keys = [(p.source, p.id) for i, p in enumerate(enriched.enriched) if base + i not in refused]
    if keys:
        found = sink.query(
            "SELECT count() FROM pd.posts FINAL WHERE (source, id) IN {keys:Array(Tuple(String, String))}", {"keys": keys}
        )[0][0]
        assert found == len(set(keys))  # a row for every message the store accepted

    alerts, detect_dead = detect.detect(stored_records)
    reasons = list(dead.values()) + [letter.reason.value for letter in out.dead + detect_dead]
    assert "processing_error" not in reasons, [letter.detail for letter in enriched.dead + out.dead + detect_dead]
    OUTCOMES.update(["row"] * out.stored)
    OUTCOMES.update(f"dead letter: {reason}" for reason in list(dead.values()) + [l.reason.value for l in out.dead])
