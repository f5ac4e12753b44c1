"""Versioned message schemas of every topic, encoded with orjson and validated on the way in.

Every message is a JSON object carrying ``schema`` (its name) and ``v`` (its version), so a
consumer can reject or upgrade what it does not understand instead of mis-reading it.
`decode_raw_post` never raises on bad input: it returns a `Rejection` with a stable reason code
that the worker routes to the dead-letter topic.
"""

from __future__ import annotations

import base64
import enum
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
)

MAX_FUTURE_SKEW = timedelta(days=1)
"""Posts dated later than now + this are rejected: event time drives the alert windows."""


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
Count = Annotated[StrictInt, Field(ge=0)]


class Message(BaseModel):
    """Base of all topic messages: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def encode(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", by_alias=True))


def post_key(source: str, post_id: str) -> bytes:
    """Partition key: every copy of a post lands on one partition, hence one worker's duplicate check."""
    return f"{source}:{post_id}".encode()


class PostMetrics(Message):
    """Engagement counters when the source exposes them (WeChat pageviews / "looking at")."""

    pageviews: Count | None = None
    likes: Count | None = None
    reposts: Count | None = None
    comments: Count | None = None
    looking_at: Count | None = None


class RawPost(Message):
    """A post as a connector saw it (`posts.raw`, schema ``raw_post`` v1)."""

    schema_name: Literal["raw_post"] = Field("raw_post", alias="schema")
    v: Literal[1] = 1
    id: Annotated[StrictStr, Field(min_length=1, max_length=256)]
    source: Annotated[StrictStr, Field(min_length=1, max_length=32, pattern=r"^[a-z0-9_.-]+$")]
    text: StrictStr
    created_at: UtcDatetime
    account: StrictStr | None = None
    author: StrictStr | None = None
    title: StrictStr | None = None
    lang: StrictStr | None = None
    url: StrictStr | None = None
    metrics: PostMetrics = PostMetrics()

    @property
    def key(self) -> bytes:
        return post_key(self.source, self.id)


class EnrichedPost(Message):
    """A normalised, classified and scored post (`posts.enriched`, schema ``enriched_post`` v1)."""

    schema_name: Literal["enriched_post"] = Field("enriched_post", alias="schema")
    v: Literal[1] = 1
    id: str
    source: str
    account: str | None
    author: str | None
    title: str | None
    url: str | None
    created_at: UtcDatetime
    text: str
    text_norm: str
    lang: str
    urls: list[str]
    mentions: list[str]
    hashtags: list[str]
    countries: list[str]
    organisations: list[str]
    content_hash: str
    is_repost: bool
    repost_of: str | None
    topic: str
    secondary_topic: str
    topic_score: float
    sentiment_score: Annotated[float, Field(ge=-1.0, le=1.0)]
    sentiment_label: Literal["negative", "neutral", "positive"]
    model_path: Literal["transformer", "lexical", "cache"]
    metrics: PostMetrics
    received_at: UtcDatetime
    processed_at: UtcDatetime

    @property
    def key(self) -> bytes:
        return post_key(self.source, self.id)


class Reason(str, enum.Enum):
    """Why a raw message was dead-lettered; stable codes for dashboards and alert rules."""

    TOO_LARGE = "too_large"
    INVALID_UTF8 = "invalid_utf8"
    NOT_JSON = "not_json"
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_SCHEMA = "unknown_schema"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    INVALID_VALUE = "invalid_value"
    TEXT_TOO_LONG = "text_too_long"
    DUPLICATE_ID = "duplicate_id"
    PROCESSING_ERROR = "processing_error"


class DeadLetter(Message):
    """A rejected input with its reason and the original bytes (`posts.dlq`, ``dead_letter`` v1)."""

    schema_name: Literal["dead_letter"] = Field("dead_letter", alias="schema")
    v: Literal[1] = 1
    reason: Reason
    detail: str
    topic: str
    partition: int
    offset: int
    original_b64: str
    failed_at: UtcDatetime

    @property
    def original(self) -> bytes:
        return base64.b64decode(self.original_b64)

    @classmethod
    def of(cls, rejection: "Rejection", original: bytes, topic: str, partition: int, offset: int) -> "DeadLetter":
        return cls(
            reason=rejection.reason,
            detail=rejection.detail[:2000],
            topic=topic,
            partition=partition,
            offset=offset,
            original_b64=base64.b64encode(original).decode(),
            failed_at=datetime.now(timezone.utc),
        )


class AlertState(str, enum.Enum):
    OPEN = "open"
    UPDATED = "updated"
    RESOLVED = "resolved"


class SamplePost(Message):
    id: str
    text: str


class Alert(Message):
    """A crisis warning for one watch and key (`alerts`, schema ``alert`` v1)."""

    schema_name: Literal["alert"] = Field("alert", alias="schema")
    v: Literal[1] = 1
    id: str
    watch: str
    key: str
    severity: Literal["info", "warning", "critical"]
    state: AlertState
    window_start: UtcDatetime
    window_end: UtcDatetime
    observed: int
    baseline: float | None
    negative_share: float
    baseline_negative_share: float | None
    score: float
    sample_posts: list[SamplePost]
    top_terms: list[str]
    opened_at: UtcDatetime
    updated_at: UtcDatetime

    @classmethod
    def from_payload(cls, payload: dict) -> "Alert":
        """From `pipeline.alerting.payload.build_alert`'s dict (ids and texts side by side, terms with counts)."""
        fields = {k: v for k, v in payload.items() if k not in ("sample_post_ids", "sample_texts", "top_terms")}
        samples = [SamplePost(id=i, text=t) for i, t in zip(payload["sample_post_ids"], payload["sample_texts"])]
        terms = [term for term, _count in payload["top_terms"]]
        return cls(**fields, sample_posts=samples, top_terms=terms)


class Rejection(BaseModel):
    """Outcome of a failed decode: a reason code plus a human-readable detail."""

    model_config = ConfigDict(frozen=True)
    reason: Reason
    detail: str


_PYDANTIC_REASONS = {
    "missing": Reason.MISSING_FIELD,
    "extra_forbidden": Reason.WRONG_TYPE,
    "literal_error": Reason.UNKNOWN_SCHEMA,
}


def _reason_for(error: ValidationError) -> Rejection:
    first = error.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"]) or "<root>"
    kind = first["type"]
    if kind == "literal_error" and where not in ("schema", "v"):
        reason = Reason.INVALID_VALUE
    elif kind in _PYDANTIC_REASONS:
        reason = _PYDANTIC_REASONS[kind]
    elif kind.endswith("_type") or kind.endswith("_parsing") or kind == "model_type":
        reason = Reason.WRONG_TYPE
    else:
        reason = Reason.INVALID_VALUE
    return Rejection(reason=reason, detail=f"{where}: {first['msg']}")


def decode_raw_post(data: bytes, *, max_bytes: int, max_text_chars: int) -> RawPost | Rejection:
    """Bytes from `posts.raw` -> a validated post, or the reason it must be dead-lettered."""
    if len(data) > max_bytes:
        return Rejection(reason=Reason.TOO_LARGE, detail=f"{len(data)} bytes > limit {max_bytes}")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection(reason=Reason.INVALID_UTF8, detail=str(exc))
    try:
        obj: Any = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return Rejection(reason=Reason.NOT_JSON, detail=str(exc))
    if not isinstance(obj, dict):
        return Rejection(reason=Reason.NOT_AN_OBJECT, detail=f"top-level {type(obj).__name__}, expected object")
    if obj.get("schema") != "raw_post" or obj.get("v") != 1:
        return Rejection(
            reason=Reason.UNKNOWN_SCHEMA, detail=f"schema={obj.get('schema')!r} v={obj.get('v')!r}, expected raw_post v1"
        )
    try:
        post = RawPost.model_validate(obj)
    except ValidationError as exc:
        return _reason_for(exc)
    if post.created_at > datetime.now(timezone.utc) + MAX_FUTURE_SKEW:
        return Rejection(reason=Reason.INVALID_VALUE, detail=f"created_at {post.created_at.isoformat()} is in the future")
    if len(post.text) > max_text_chars:
        return Rejection(reason=Reason.TEXT_TOO_LONG, detail=f"text has {len(post.text)} chars > limit {max_text_chars}")
    return post


def decode(data: bytes, model: type[Message]) -> Message:
    """Decode a trusted topic (written by this pipeline); raises on mismatch."""
    return model.model_validate(orjson.loads(data))



def message_keys(model: type[Message]) -> frozenset[str]:
    """The JSON keys every message of `model` carries (`Message.encode` writes optional ones as null)."""
    return frozenset(field.alias or name for name, field in model.model_fields.items())
