"""Versioned message schemas of every topic, validated on the way in.

Every message is a JSON object carrying ``schema`` (its name) and ``v`` (its version), so a
consumer can reject or upgrade what it does not understand instead of mis-reading it.
`decode_raw_post` never raises on bad input: it returns a `Rejection` with a stable reason code
that the worker routes to the dead-letter topic.

The schemas are msgspec structs: msgspec decodes and validates a raw post in ~3 us and encodes
an enriched one in ~1 us on this machine, against ~14 us and ~30 us for the same pydantic
models, and every post crosses three of these steps (README, "Dependencies"). Constructing a
struct does not validate it: code builds messages from values it already checked, and
everything read from a topic goes through a decoder here.
"""

from __future__ import annotations

import base64
import enum
import functools
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args

import msgspec
from msgspec import DecodeError, ValidationError

UtcDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
"""Must carry a zone; the pipeline's own messages are written in UTC."""
COUNT_MAX = 2**63 - 1
Count = Annotated[int, msgspec.Meta(ge=0, le=COUNT_MAX)]
"""An engagement counter: ClickHouse stores it as Nullable(UInt64) and would wrap a larger value
to a wrong number, so anything beyond int64 (the widest bound msgspec checks) is refused."""


class Message(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of all topic messages: immutable, strict about unknown fields and about types
    (no string-to-number coercion). Times carry a zone; the pipeline writes them in UTC (input
    is converted where it enters, in `decode_raw_post`)."""

    def encode(self) -> bytes:
        return _ENCODER.encode(self)


_ENCODER = msgspec.json.Encoder()
M = TypeVar("M", bound=Message)


@functools.cache
def _decoder(model: type[M]) -> msgspec.json.Decoder[M]:
    return msgspec.json.Decoder(model)


@functools.cache
def _strict(model: type[M]) -> type[M]:
    """`model` with its envelope (`schema`, `v`) required: code builds messages without naming
    them (the defaults), but a message read from a topic must say what it is, or it is refused
    (``missing_field``) instead of being taken for the current version. A subclass, so the
    decoded messages are still `model`s and encode the same."""
    fields = {field.name: field for field in msgspec.structs.fields(model)}
    if fields["schema"].default is msgspec.NODEFAULT:
        return model  # a view_of struct: already required
    def __eq__(self, other):  # equal to the `model` message with the same fields, either way round
        if not isinstance(other, model):
            return NotImplemented
        return msgspec.structs.astuple(self) == msgspec.structs.astuple(other)

    def __ne__(self, other):
        equal = __eq__(self, other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self):  # as the `model` message's (which counts its type in)
        return hash(model(**msgspec.structs.asdict(self)))

    namespace = {
        "__annotations__": {"schema": fields["schema"].type, "v": fields["v"].type},
        "__eq__": __eq__,
        "__ne__": __ne__,
        "__hash__": __hash__,
    }
    return type(model)(model.__name__, (model,), namespace, kw_only=True, frozen=True, forbid_unknown_fields=True)


def post_key(source: str, post_id: str) -> bytes:
    """Partition key: every copy of a post lands on one partition, hence one worker's duplicate check."""
    return f"{source}:{post_id}".encode()


class PostMetrics(Message, kw_only=True):
    """Engagement counters when the source exposes them (WeChat pageviews / "looking at")."""

    pageviews: Count | None = None
    likes: Count | None = None
    reposts: Count | None = None
    comments: Count | None = None
    looking_at: Count | None = None


class RawPost(Message, kw_only=True):
    """A post as a connector saw it (`posts.raw`, schema ``raw_post`` v1)."""

    schema: Literal["raw_post"] = "raw_post"
    v: Literal[1] = 1
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[a-z0-9_.-]+$")]
    text: str
    created_at: UtcDatetime
    account: str | None = None
    author: str | None = None
    title: str | None = None
    lang: str | None = None
    url: str | None = None
    metrics: PostMetrics = msgspec.field(default_factory=PostMetrics)

    @property
    def key(self) -> bytes:
        return post_key(self.source, self.id)


class EnrichedPost(Message, kw_only=True):
    """A normalised, classified and scored post (`posts.enriched`, schema ``enriched_post`` v1)."""

    schema: Literal["enriched_post"] = "enriched_post"
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
    sentiment_score: Annotated[float, msgspec.Meta(ge=-1.0, le=1.0)]
    sentiment_label: Literal["negative", "neutral", "positive"]
    # the model that scored the post (a repost carries its original's); "cache" is no longer
    # written but still valid in v1, "empty" marks a text with nothing left to score
    model_path: Literal["learned", "transformer", "lexical", "cache", "empty"]
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


@dataclass(frozen=True)
class Rejection:
    """Outcome of a failed decode: a reason code plus a human-readable detail."""

    reason: Reason
    detail: str

    @classmethod
    def of_exception(cls, exc: BaseException) -> "Rejection":
        """A record whose handling raised: ``processing_error`` with the exception and where it
        was raised (the innermost frames), so the dead letter alone points at the bug."""
        frames = traceback.extract_tb(exc.__traceback__)[-3:]
        where = " < ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames))
        return cls(reason=Reason.PROCESSING_ERROR, detail=f"{type(exc).__name__}: {exc} [at {where or '?'}]")


@dataclass(frozen=True)
class TimeRange:
    """The event times a stage accepts: from `not_before` to `max_future` past the wall clock.

    Event time drives the alert windows, so a post dated in year 1 or 2099 is refused where it
    enters instead of making the engine walk centuries of empty windows; the range also stays
    inside ClickHouse's DateTime64 (1900-2299)."""

    not_before: datetime
    max_future: timedelta

    def refuse(self, name: str, value: datetime) -> Rejection | None:
        """Why `value` (an aware datetime) is out of range, or None. Compares without converting
        zones (a conversion near year 1 or 9999 overflows)."""
        if value < self.not_before:
            return Rejection(reason=Reason.INVALID_VALUE, detail=f"{name}: {value.isoformat()} is before {self.not_before.isoformat()}")
        if value > datetime.now(timezone.utc) + self.max_future:
            return Rejection(reason=Reason.INVALID_VALUE, detail=f"{name}: {value.isoformat()} is in the future")
        return None


@dataclass(frozen=True)
class PostLimits:
    """What `decode_raw_post` accepts (from `Settings.post_limits()`)."""

    max_bytes: int
    max_text_chars: int
    created_at: TimeRange


class DeadLetter(Message, kw_only=True):
    """A rejected input with its reason and the original bytes (`posts.dlq`, ``dead_letter`` v1)."""

    schema: Literal["dead_letter"] = "dead_letter"
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
    def of(cls, rejection: Rejection, original: bytes, topic: str, partition: int, offset: int) -> "DeadLetter":
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


class SamplePost(Message, kw_only=True):
    id: str
    text: str


AlertKind = Literal["surge", "story", "forecast"]
"""surge: a watch's observed volume or negative share; story: an emerging story found without a
watch; forecast: a watch's forecast crossing its static threshold within the horizon."""


class StoryDetails(Message, kw_only=True):
    """What an emerging story (kind ``story``) is about."""

    terms: list[str]
    hashtags: list[str]
    countries: list[str]
    languages: list[str]
    mean_sentiment: Annotated[float, msgspec.Meta(ge=-1.0, le=1.0)]


class ForecastDetails(Message, kw_only=True):
    """Why a forecast warning (kind ``forecast``) was raised: the first forecast step whose
    upper 80 % bound crosses the watch's static threshold."""

    metric: Literal["volume", "negative_share"]
    horizon_end: UtcDatetime
    forecast: float
    upper_80: float
    upper_95: float
    threshold: float
    model: str


class Alert(Message, kw_only=True):
    """A warning for one watch and key (`alerts`, schema ``alert`` v2).

    v2 (v1 + `kind`, `scale`, `story`, `forecast`): one schema for every kind of warning on the
    topic, so a subscriber keeps the newest transition per `id` whatever its kind.
    """

    schema: Literal["alert"] = "alert"
    v: Literal[2] = 2
    id: str
    kind: AlertKind = "surge"
    watch: str
    key: str
    scale: str | None = None
    """The detection window of a surge (e.g. ``5m``, ``1h``); None where it does not apply."""
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
    story: StoryDetails | None = None
    forecast: ForecastDetails | None = None

    @classmethod
    def from_payload(cls, payload: dict) -> "Alert":
        """From `pipeline.alerting.payload.build_alert`'s dict (ids and texts side by side, terms
        with counts, ISO times), validated like a decoded message."""
        fields = {k: v for k, v in payload.items() if k not in ("sample_post_ids", "sample_texts", "top_terms")}
        samples = [{"id": i, "text": t} for i, t in zip(payload["sample_post_ids"], payload["sample_texts"])]
        terms = [term for term, _count in payload["top_terms"]]
        return msgspec.convert({**fields, "sample_posts": samples, "top_terms": terms}, cls)


def _reason_for(error: ValidationError) -> Reason:
    """msgspec's message names the kind of failure; the path (`- at $.field`) follows it."""
    message = str(error)
    if message.startswith("Object missing required field"):
        return Reason.MISSING_FIELD
    if message.startswith(("Object contains unknown field", "Invalid RFC3339")) or ", got `" in message:
        return Reason.WRONG_TYPE
    return Reason.INVALID_VALUE  # constraints: length, range, pattern, enum value, naive datetime


def _located(message: str) -> str:
    """msgspec's "Expected `int`, got `str` - at `$.metrics.likes`" -> "metrics.likes: Expected ...",
    so a detail names its field first (as the DLQ's readers expect)."""
    text, _, path = message.partition(" - at `$")
    if path:
        where = path.rstrip("`").lstrip(".")
    elif text.startswith("Object") and "`" in text:  # "Object missing required field `text`"
        where = text.split("`")[1]
    else:
        where = "<root>"
    return f"{where}: {text}"


def decode_message(data: bytes, model: type[M]) -> M | Rejection:
    """Bytes from a topic -> a validated message of `model` (or of a `view_of` one), or why it is
    not one (never raises). The envelope (`schema`, `v`) must be in the message."""
    try:
        return _decoder(_strict(model)).decode(data)
    except (DecodeError, UnicodeDecodeError):  # msgspec checks UTF-8 inside strings, JSON around them
        return _rejection(data, model)


def _rejection(data: bytes, model: type[msgspec.Struct]) -> Rejection:
    """Why `data` is not a `model` message (the slow path, taken only for bad input): the
    envelope is checked first, so a message of another schema is named as such whatever else
    is wrong with it."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection(reason=Reason.INVALID_UTF8, detail=str(exc))
    try:
        obj: Any = msgspec.json.decode(data)  # integers as integers, however large (orjson makes floats)
    except DecodeError as exc:
        return Rejection(reason=Reason.NOT_JSON, detail=str(exc))
    if not isinstance(obj, dict):
        return Rejection(reason=Reason.NOT_AN_OBJECT, detail=f"top-level {type(obj).__name__}, expected object")
    schema, version = _envelope(model)
    for name in ("schema", "v"):
        if name not in obj:
            return Rejection(reason=Reason.MISSING_FIELD, detail=f"{name}: the envelope names no {name} (expected {schema} v{version})")
    if obj.get("schema") != schema or obj.get("v") != version:
        detail = f"schema={obj.get('schema')!r} v={obj.get('v')!r}, expected {schema} v{version}"
        return Rejection(reason=Reason.UNKNOWN_SCHEMA, detail=detail)
    try:
        msgspec.convert(obj, _strict(model))
    except ValidationError as exc:
        return Rejection(reason=_reason_for(exc), detail=_located(str(exc)))
    return Rejection(reason=Reason.NOT_JSON, detail="not one JSON document the schema accepts")  # e.g. a repeated key


@functools.cache
def _envelope(model: type[msgspec.Struct]) -> tuple[str, int]:
    """The (schema, v) a model accepts: the single value of each of its Literal fields."""
    types = {field.name: field.type for field in msgspec.structs.fields(model)}
    return get_args(types["schema"])[0], get_args(types["v"])[0]


def decode_raw_post(data: bytes, limits: PostLimits) -> RawPost | Rejection:
    """Bytes from `posts.raw` -> a validated post, or the reason it must be dead-lettered."""
    if len(data) > limits.max_bytes:
        return Rejection(reason=Reason.TOO_LARGE, detail=f"{len(data)} bytes > limit {limits.max_bytes}")
    post = decode_message(data, RawPost)
    if isinstance(post, Rejection):
        return post
    if (refused := limits.created_at.refuse("created_at", post.created_at)) is not None:
        return refused  # checked before the conversion below, which overflows near year 1
    if post.created_at.tzinfo is not timezone.utc:  # "+08:00" from a source: UTC from here on
        post = msgspec.structs.replace(post, created_at=post.created_at.astimezone(timezone.utc))
    if len(post.text) > limits.max_text_chars:
        return Rejection(reason=Reason.TEXT_TOO_LONG, detail=f"text has {len(post.text)} chars > limit {limits.max_text_chars}")
    return post


def view_of(model: type[Message], fields: Iterable[str]) -> type[msgspec.Struct]:
    """A read-only view of `model`'s messages: its envelope and `fields`, each required and typed
    as in `model`; the decoder skips the other keys without building objects for them (a third
    of the cost of a whole enriched post). For a stage that reads a few fields of every message
    and leaves the full check to another (the alert engine; the store validates whole posts)."""
    kept = {"schema", "v", *fields}
    return msgspec.defstruct(
        f"{model.__name__}View",
        [(field.name, field.type) for field in msgspec.structs.fields(model) if field.name in kept],
        frozen=True,
    )


def decode(data: bytes, model: type[M]) -> M:
    """Decode a trusted topic (written by this pipeline); raises `DecodeError` on a mismatch."""
    return _decoder(model).decode(data)
