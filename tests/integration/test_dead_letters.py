"""Every kind of bad input on posts.raw lands on posts.dlq with its reason; the worker keeps going."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from pipeline.schemas import DeadLetter, EnrichedPost, decode
from pipeline.settings import Topics
from pipeline.testing import produce
from pipeline.topics import ensure_topics
from tests.integration.kafka_io import read_topic

pytestmark = pytest.mark.integration


def raw(post_id: str, **fields) -> dict:
    post = {"schema": "raw_post", "v": 1, "id": post_id, "source": "weibo", "text": "香港游客 news",
            "created_at": "2015-02-08T10:00:00Z"}  # fmt: skip
    post.update(fields)
    return post


def test_each_kind_of_bad_input_is_dead_lettered_with_its_reason(make_settings, worker_factory):
    settings = make_settings(max_text_chars=200, max_message_bytes=2048)
    asyncio.run(ensure_topics(settings))
    missing_text = raw("m1")
    del missing_text["text"]
    bad = {
        "not_json": b"{this is not json",
        "invalid_utf8": b'{"schema":"raw_post","text":"\xff\xfe"}',
        "missing_field": orjson.dumps(missing_text),
        "wrong_type": orjson.dumps(raw(12345)),
        "text_too_long": orjson.dumps(raw("long", text="很" * 201)),
        "too_large": orjson.dumps(raw("huge", text="x" * 100, url="http://e/" + "a" * 3000)),
        "unknown_schema": orjson.dumps(raw("v9", v=9)),
        "not_an_object": b"[1, 2, 3]",
        "duplicate_id": orjson.dumps(raw("good-1", text="a second message reusing an id")),
    }
    good_first = orjson.dumps(raw("good-1"))
    good_last = orjson.dumps(raw("good-2", text="still running after the bad input"))
    messages = [(b"weibo:good-1", good_first)] + [(b"weibo:good-1" if k == "duplicate_id" else None, v) for k, v in bad.items()]
    messages.append((b"weibo:good-2", good_last))

    worker = worker_factory(settings)
    asyncio.run(produce(settings, Topics.RAW, messages))

    letters = [decode(r.value, DeadLetter) for r in asyncio.run(read_topic(settings, Topics.DLQ, expected=len(bad), idle_s=None))]
    by_reason = {letter.reason.value: letter for letter in letters}
    assert sorted(by_reason) == sorted(bad)
    for reason, original in bad.items():
        assert by_reason[reason].original == original, reason
        assert by_reason[reason].detail
        assert by_reason[reason].topic == settings.topic(Topics.RAW)

    enriched = [decode(r.value, EnrichedPost) for r in asyncio.run(read_topic(settings, Topics.ENRICHED, expected=2, idle_s=None))]
    assert sorted(p.id for p in enriched) == ["good-1", "good-2"]
    assert worker.process.poll() is None
    for reason in bad:
        assert worker.metric("pd_dlq_total", reason=reason) == 1, reason
