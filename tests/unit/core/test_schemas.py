"""Raw input is validated into versioned messages; each failure has its own reason code."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import msgspec
import pytest


from pipeline.schemas import (
    Alert,
    AlertState,
    DeadLetter,
    PostLimits,
    RawPost,
    Reason,
    Rejection,
    TimeRange,
    decode,
    decode_raw_post,
)

LIMITS = PostLimits(4096, 100, TimeRange(datetime(1990, 1, 1, tzinfo=timezone.utc), timedelta(days=1)))


def raw(**fields) -> bytes:
    post = {"schema": "raw_post", "v": 1, "id": "42", "source": "weibo", "text": "中俄友好",
            "created_at": "2015-02-08T18:00:00+08:00"}  # fmt: skip
    post.update(fields)
    return msgspec.json.encode({k: v for k, v in post.items() if v is not ...})  # integers of any size


def test_valid_post_is_decoded_with_time_in_utc():
    post = decode_raw_post(raw(metrics={"pageviews": 5457, "looking_at": 144}), LIMITS)
    assert isinstance(post, RawPost)
    assert post.created_at == datetime(2015, 2, 8, 10, tzinfo=timezone.utc)
    assert b'"created_at":"2015-02-08T10:00:00Z"' in post.encode()  # the same instant, written in UTC
    assert post.metrics.pageviews == 5457 and post.metrics.likes is None
    assert post.key == b"weibo:42"


def test_encode_decode_round_trip():
    post = decode_raw_post(raw(), LIMITS)
    assert decode_raw_post(post.encode(), LIMITS) == post


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"x" * 5000, Reason.TOO_LARGE),
        (b'{"text": "\xff"}', Reason.INVALID_UTF8),
        (b"{oops", Reason.NOT_JSON),
        (b'"just a string"', Reason.NOT_AN_OBJECT),
        (raw(schema="tweet"), Reason.UNKNOWN_SCHEMA),
        (raw(v=2), Reason.UNKNOWN_SCHEMA),
        (raw(text=...), Reason.MISSING_FIELD),
        (raw(id=42), Reason.WRONG_TYPE),
        (raw(metrics={"likes": "many"}), Reason.WRONG_TYPE),
        (raw(colour="red"), Reason.WRONG_TYPE),
        (raw(created_at="2015-02-08T10:00:00"), Reason.INVALID_VALUE),
        (raw(metrics={"likes": -1}), Reason.INVALID_VALUE),
        (raw(source="Weibo!"), Reason.INVALID_VALUE),
        (raw(text="长" * 101), Reason.TEXT_TOO_LONG),
        (raw(schema=...), Reason.MISSING_FIELD),
        (raw(v=...), Reason.MISSING_FIELD),
        (raw(metrics={"likes": 2**67}), Reason.INVALID_VALUE),
        (raw(metrics={"pageviews": 2**63}), Reason.INVALID_VALUE),
        (raw(created_at="0001-01-01T00:00:00+08:00"), Reason.INVALID_VALUE),
        (raw(created_at="1800-01-01T00:00:00Z"), Reason.INVALID_VALUE),
        (raw(created_at="9999-12-31T23:59:59-05:00"), Reason.INVALID_VALUE),
    ],
)
def test_each_bad_input_has_its_reason(data, reason):
    result = decode_raw_post(data, LIMITS)
    assert isinstance(result, Rejection)
    assert result.reason is reason
    assert result.detail


def test_dead_letter_keeps_the_original_bytes():
    original = b"\x00\xffnot json"
    letter = DeadLetter.of(Rejection(reason=Reason.NOT_JSON, detail="bad"), original, "posts.raw", 3, 17)
    again = decode(letter.encode(), DeadLetter)
    assert again.original == original and again.reason is Reason.NOT_JSON and again.offset == 17


def test_alert_from_engine_payload():
    payload = {
        "id": "a1", "watch": "hk", "key": "all", "severity": "critical", "state": "open",
        "window_start": "2015-02-08T10:00:00Z", "window_end": "2015-02-08T11:00:00Z", "observed": 40,
        "baseline": None, "negative_share": 0.8, "baseline_negative_share": 0.2, "score": 0.97,
        "sample_post_ids": ["p1", "p2"], "sample_texts": ["蝗虫", "滚回去"], "top_terms": [["游客", 9], ["香港", 7]],
        "opened_at": "2015-02-08T11:00:00Z", "updated_at": "2015-02-08T11:00:00Z",
    }  # fmt: skip
    alert = Alert.from_payload(payload)
    assert alert.state is AlertState.OPEN
    assert [(p.id, p.text) for p in alert.sample_posts] == [("p1", "蝗虫"), ("p2", "滚回去")]
    assert alert.top_terms == ["游客", "香港"]
    assert decode(alert.encode(), Alert) == alert


def test_post_dated_in_the_future_is_rejected():
    """Event time drives the alert windows; a clock-broken source must not drag them years ahead."""
    result = decode_raw_post(raw(created_at="2099-01-01T00:00:00Z"), LIMITS)
    assert isinstance(result, Rejection) and result.reason is Reason.INVALID_VALUE
    assert "future" in result.detail


def test_the_largest_count_clickhouse_is_given_is_accepted():
    post = decode_raw_post(raw(metrics={"likes": 2**63 - 1}), LIMITS)
    assert isinstance(post, RawPost) and post.metrics.likes == 2**63 - 1


def test_a_message_without_its_envelope_is_refused_not_taken_for_the_current_version():
    result = decode_raw_post(raw(schema=..., v=...), LIMITS)
    assert isinstance(result, Rejection) and result.reason is Reason.MISSING_FIELD
    assert result.detail.startswith("schema")
