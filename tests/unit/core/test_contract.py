"""The published contract: committed JSON Schemas match the msgspec structs and describe real
messages; alert transitions carry CloudEvents headers."""

from __future__ import annotations

import jsonschema
import msgspec
import orjson
import pytest

from pipeline.contract import (
    SCHEMAS_DIR,
    TOPIC_MESSAGES,
    cloudevent_headers,
    render,
    schema_path,
    transition_id,
)
from pipeline.schemas import Alert, DeadLetter, EnrichedPost, PostMetrics, RawPost, Reason, Rejection
from pipeline.settings import Topics
from tests.alert_samples import T0, alert

def one_message_per_topic() -> dict[str, msgspec.Struct]:
    raw = RawPost(id="4837262", source="weibo", text="内地游客 香港", created_at=T0, metrics=PostMetrics(reposts=3))
    enriched = EnrichedPost(
        id=raw.id, source=raw.source, account=None, author=None, title=None, url=None, created_at=T0, text=raw.text,
        text_norm=raw.text, lang="zh", urls=[], mentions=[], hashtags=[], countries=["HK"], organisations=[],
        content_hash="ab12", is_repost=False, repost_of=None, topic="political_affairs", secondary_topic="diplomacy",
        topic_score=0.8, sentiment_score=-0.6, sentiment_label="negative", model_path="lexical", metrics=raw.metrics,
        received_at=T0, processed_at=T0,
    )  # fmt: skip
    dead = DeadLetter.of(Rejection(Reason.NOT_JSON, "oops"), b"{oops", "posts.raw", 0, 7)
    return {Topics.RAW: raw, Topics.ENRICHED: enriched, Topics.DLQ: dead, Topics.ALERTS: alert()}


@pytest.mark.parametrize("topic", list(TOPIC_MESSAGES))
def test_committed_schema_matches_the_structs(topic):
    path = schema_path(topic)
    assert path.exists(), f"{path} missing: run python -m pipeline.contract"
    assert path.read_bytes() == render(topic), f"{path} drifted from pipeline/schemas.py: run python -m pipeline.contract"


def test_every_schema_file_belongs_to_a_topic():
    assert {path.name for path in SCHEMAS_DIR.glob("*.json")} == {schema_path(t).name for t in TOPIC_MESSAGES}


@pytest.mark.parametrize("topic", list(TOPIC_MESSAGES))
def test_the_pipeline_messages_are_valid_and_a_broken_one_is_not(topic):
    schema = orjson.loads(schema_path(topic).read_bytes())
    validator = jsonschema.Draft202012Validator(schema)
    message = orjson.loads(one_message_per_topic()[topic].encode())
    validator.validate(message)
    for broken in ({**message, "unknown_field": 1}, {k: v for k, v in message.items() if k != "v"}, {**message, "v": 99}):
        assert not validator.is_valid(broken)


def test_cloudevent_headers_of_a_transition():
    headers = dict(cloudevent_headers(alert(), source="/pd-monitor"))
    assert headers == {
        "ce_specversion": b"1.0",
        "ce_id": transition_id(alert()).encode(),
        "ce_type": b"pd-monitor.alert.open",
        "ce_source": b"/pd-monitor",
        "ce_subject": b"433a15a3f72e9d9fbacc",
        "ce_time": b"2015-02-08T07:00:00Z",
        "ce_dataschema": b"urn:pd-monitor:schema:alert:2",
        "content-type": b"application/json",
    }


def test_each_transition_has_its_own_event_id_and_a_redelivery_keeps_it():
    transitions = [alert("open"), alert("updated", "critical", 2), alert("updated", "critical", 3), alert("resolved", "critical", 6)]
    ids = [transition_id(a) for a in transitions]
    assert len(set(ids)) == len(ids)
    assert transition_id(msgspec.json.decode(transitions[1].encode(), type=Alert)) == ids[1]
