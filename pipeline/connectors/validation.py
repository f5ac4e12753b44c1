"""Every connector turns its source item into a field mapping and validates it here, the same way the worker does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from pipeline.schemas import RawPost, Reason, Rejection, decode_raw_post
from pipeline.settings import Settings


def post_from_mapping(fields: Any, settings: Settings) -> RawPost | Rejection:
    """RawPost fields (``schema``/``v`` optional) -> a post, or the reason it goes to the dead-letter topic.

    Goes through `decode_raw_post` so a connector rejects exactly what the worker would reject
    (size and text-length limits included) instead of growing a second set of rules.
    """
    if not isinstance(fields, dict):
        return Rejection(reason=Reason.NOT_AN_OBJECT, detail=f"got {type(fields).__name__}, expected object")
    envelope = {"schema": "raw_post", "v": 1, **fields}
    try:
        data = orjson.dumps(envelope)
    except TypeError as exc:
        return Rejection(reason=Reason.WRONG_TYPE, detail=str(exc))
    return decode_raw_post(data, settings.post_limits())


def post_from_json(data: bytes, settings: Settings) -> RawPost | Rejection:
    """One JSON document (a JSONL line, say) -> a post or a rejection; never raises."""
    try:
        fields = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as utf8_exc:
            return Rejection(reason=Reason.INVALID_UTF8, detail=str(utf8_exc))
        return Rejection(reason=Reason.NOT_JSON, detail=str(exc))
    return post_from_mapping(fields, settings)


def post_from_item(item: Any, to_fields: Callable[[Any], dict], settings: Settings) -> RawPost | Rejection:
    """Map one API item with `to_fields`; a shape the mapping cannot read becomes a rejection, not a crash."""
    try:
        fields = to_fields(item)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        return Rejection(reason=Reason.INVALID_VALUE, detail=f"{type(exc).__name__}: {exc}")
    return post_from_mapping(fields, settings)
