"""The store stage without ClickHouse: validation, bisection of refused batches, retries."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import msgspec
import orjson
import pytest

from pipeline.schemas import EnrichedPost, Reason, TimeRange
from tests.factories import enriched_post
from pipeline.sinks import DataRejected
from pipeline.stages import RawRecord, StoreStage

T0 = datetime(2015, 2, 8, tzinfo=timezone.utc)


def post(i: int) -> EnrichedPost:
    return enriched_post(f"p{i}", T0, source="weibo", received_at=T0 + timedelta(seconds=i), processed_at=T0)


def records(values: list[bytes]) -> list[RawRecord]:
    return [RawRecord(value, "posts.enriched", 0, offset) for offset, value in enumerate(values)]


class Store:
    """Stores what it is given, refusing (like the engine) any batch holding a message it dislikes."""

    def __init__(self, refuse: set[bytes] = frozenset(), fail: Exception | None = None):
        self.refuse, self.fail = refuse, fail
        self.stored: list[bytes] = []
        self.inserts = 0

    def insert_encoded_posts(self, messages):
        self.inserts += 1
        if self.fail is not None:
            raise self.fail
        if self.refuse & set(messages):
            raise DataRejected("VIOLATED_CONSTRAINT")
        self.stored += messages
        return len(messages)


RANGE = TimeRange(datetime(1990, 1, 1, tzinfo=timezone.utc), timedelta(days=1))


def process(store: Store, values: list[bytes]):
    """Check then insert, as the worker does (there the next batch is checked during the insert)."""
    stage = StoreStage(store, RANGE)
    return stage.insert(stage.check(records(values)))


def test_messages_with_the_right_envelope_are_stored_as_they_are():
    values = [post(i).encode() for i in range(3)]
    store = Store()
    stage = StoreStage(store, RANGE)
    checked = stage.check(records(values))
    assert checked.received_at == [T0 + timedelta(seconds=i) for i in range(3)]
    out = stage.insert(checked)
    assert store.stored == values and store.inserts == 1
    assert out.stored == 3 and out.dead == []


DROP = object()


def bad(**changes) -> bytes:
    """post(1)'s message with fields changed (or dropped)."""
    fields = {**orjson.loads(post(1).encode()), **changes}
    return msgspec.json.encode({k: v for k, v in fields.items() if v is not DROP})  # integers of any size


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"not json", Reason.NOT_JSON),
        (b"[1, 2]", Reason.NOT_AN_OBJECT),
        (bad(v=2), Reason.UNKNOWN_SCHEMA),
        (bad(schema="raw_post"), Reason.UNKNOWN_SCHEMA),
        (bad(text=DROP), Reason.MISSING_FIELD),
        (bad(extra=1), Reason.WRONG_TYPE),
        (bad(metrics={"views": 1}), Reason.WRONG_TYPE),
        (bad(metrics=[1]), Reason.WRONG_TYPE),
        (bad(received_at=5), Reason.WRONG_TYPE),
        (bad(sentiment_score="high"), Reason.WRONG_TYPE),
        (bad(sentiment_label="angry"), Reason.INVALID_VALUE),
        (bad(schema=DROP), Reason.MISSING_FIELD),
        (bad(created_at="0001-01-01T00:00:00+08:00"), Reason.INVALID_VALUE),
        (bad(created_at="1800-01-01T00:00:00Z"), Reason.INVALID_VALUE),
        (bad(metrics={"likes": 2**63}), Reason.INVALID_VALUE),
    ],
    ids=["not-json", "array", "version-2", "other-schema", "missing-field", "unknown-field", "unknown-metric",
         "metrics-not-object", "bad-timestamp", "score-not-a-number", "unknown-label", "no-schema", "year-1",
         "year-1800", "count-beyond-int64"],  # fmt: skip
)
def test_a_wrong_envelope_is_dead_lettered_with_its_bytes_and_the_rest_stored(value, reason):
    store = Store()
    out = process(store, [post(0).encode(), value, post(2).encode()])
    assert [(letter.original, letter.reason, letter.offset) for letter in out.dead] == [(value, reason, 1)]
    assert store.stored == [post(0).encode(), post(2).encode()]


def test_messages_the_engine_refuses_are_isolated_by_bisection():
    values = [post(i).encode() for i in range(64)]
    refused = {values[5], values[40]}
    store = Store(refuse=refused)
    out = process(store, values)
    assert {letter.original for letter in out.dead} == refused
    assert all(letter.reason == Reason.INVALID_VALUE and "ClickHouse" in letter.detail for letter in out.dead)
    assert sorted(store.stored) == sorted(set(values) - refused) and out.stored == 62
    assert store.inserts < 2 * 2 * 7  # two paths of log2(64) halvings, not 64 single inserts


def test_a_failing_engine_is_raised_so_the_batch_is_retried_not_dead_lettered():
    store = Store(fail=ConnectionError("ClickHouse is down"))
    with pytest.raises(ConnectionError):
        process(store, [post(0).encode()])
    assert store.inserts == 1
