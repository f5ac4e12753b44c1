"""The published contract of the topics: a JSON Schema per topic and CloudEvents headers on `alerts`.

Subscribers in other languages validate against `deploy/schemas/<topic>.json`, generated here
from the msgspec structs that the pipeline itself decodes with (`pipeline/schemas.py`), so the
published schema cannot say something the code does not do: `tests/unit/core/test_contract.py`
fails when the committed files drift from the structs. Regenerate with

    python -m pipeline.contract        # rewrites deploy/schemas/*.json

Every alert transition also carries the CloudEvents Kafka protocol binding's headers (binary
content mode: the value stays the plain `alert` v2 JSON), so an event router or a CloudEvents
SDK can consume `alerts` without knowing this project.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import msgspec
import orjson

from pipeline.schemas import Alert, DeadLetter, EnrichedPost, Message, RawPost
from pipeline.settings import PROJECT_ROOT, Topics

SCHEMAS_DIR = PROJECT_ROOT / "deploy" / "schemas"

TOPIC_MESSAGES: dict[str, type[Message]] = {
    Topics.RAW: RawPost,
    Topics.ENRICHED: EnrichedPost,
    Topics.DLQ: DeadLetter,
    Topics.ALERTS: Alert,
}
TOPIC_KEYS = {
    Topics.RAW: "source:id of the post (UTF-8)",
    Topics.ENRICHED: "source:id of the post (UTF-8)",
    Topics.DLQ: "topic:partition:offset of the rejected record (UTF-8)",
    Topics.ALERTS: "alert id (UTF-8); the topic is compacted to the newest transition per alert",
}

CLOUDEVENTS_SPEC_VERSION = "1.0"


def envelope(model: type[Message]) -> tuple[str, int]:
    """The (schema, v) a message struct writes: the defaults of its envelope fields."""
    defaults = {field.name: field.default for field in msgspec.structs.fields(model)}
    return defaults["schema"], defaults["v"]


def schema_id(model: type[Message]) -> str:
    name, version = envelope(model)
    return f"urn:pd-monitor:schema:{name}:{version}"


def topic_schema(topic: str) -> dict[str, Any]:
    """JSON Schema (2020-12) of the messages of `topic`, as msgspec generates it for the struct,
    with the envelope (`schema`, `v`) required: the pipeline always writes it and subscribers
    dispatch on it, although the struct fills it in by default."""
    model = TOPIC_MESSAGES[topic]
    generated = msgspec.json.schema(model)
    definition = generated["$defs"][model.__name__]
    definition["required"] = ["schema", "v", *(name for name in definition["required"] if name not in ("schema", "v"))]
    kafka: dict[str, Any] = {"topic": topic, "key": TOPIC_KEYS[topic]}
    if topic == Topics.ALERTS:
        kafka["headers"] = {
            "ce_specversion": CLOUDEVENTS_SPEC_VERSION,
            "ce_id": "one id per transition: the same transition redelivered keeps it",
            "ce_type": "pd-monitor.alert.open | pd-monitor.alert.updated | pd-monitor.alert.resolved",
            "ce_source": "/<APP_ID>: the deployment that raised the alert",
            "ce_subject": "the alert id",
            "ce_time": "updated_at of the transition (event time, RFC 3339)",
            "ce_dataschema": schema_id(model),
            "content-type": "application/json",
        }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": schema_id(model),
        "title": "{}: {} v{}".format(topic, *envelope(model)),
        "x-kafka": kafka,
        **generated,
    }


def render(topic: str) -> bytes:
    return orjson.dumps(topic_schema(topic), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def schema_path(topic: str, directory: Path = SCHEMAS_DIR) -> Path:
    return directory / f"{topic}.json"


def write_schemas(directory: Path = SCHEMAS_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for topic in TOPIC_MESSAGES:
        path = schema_path(topic, directory)
        path.write_bytes(render(topic))
        written.append(path)
    return written


def transition_id(alert: Alert) -> str:
    """Stable per transition (alert, state, severity, event time): a redelivered or replayed
    transition keeps its id, so a CloudEvents consumer de-duplicates on it."""
    parts = (alert.id, alert.state.value, alert.severity, alert.updated_at.isoformat())
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:24]


def cloudevent_headers(alert: Alert, source: str) -> list[tuple[str, bytes]]:
    """Kafka record headers of one alert transition (CloudEvents 1.0, Kafka protocol binding,
    binary content mode); `source` names the emitting deployment, e.g. ``/pd-monitor``."""
    attributes = {
        "ce_specversion": CLOUDEVENTS_SPEC_VERSION,
        "ce_id": transition_id(alert),
        "ce_type": f"pd-monitor.alert.{alert.state.value}",
        "ce_source": source,
        "ce_subject": alert.id,
        "ce_time": alert.updated_at.isoformat().replace("+00:00", "Z"),
        "ce_dataschema": schema_id(Alert),
        "content-type": "application/json",
    }
    return [(name, value.encode()) for name, value in attributes.items()]


def cloudevent_source(app_id: str) -> str:
    return f"/{app_id}"


if __name__ == "__main__":
    for written in write_schemas(Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMAS_DIR):
        print(written)
