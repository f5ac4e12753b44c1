"""One source of truth for the enriched post's fields: the msgspec struct. The ClickHouse landing table
(`enriched_post_v1`, which parses the messages as they are on the topic) and the `posts` table must
follow it; a field added to one and not the other fails here, not in production."""

from __future__ import annotations

import types
import typing
from datetime import datetime

import msgspec
import pytest

from pipeline.schemas import EnrichedPost, PostMetrics
from pipeline.sinks.clickhouse import migrate

pytestmark = pytest.mark.integration

NOT_IN_POSTS = {"schema", "v", "metrics", "received_at"}
"""The envelope and arrival time stay in the message; `metrics` is flattened into its counters."""


def clickhouse_type(annotation) -> set[str]:
    """The column types that hold a struct field of this type exactly (LowCardinality or not)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return clickhouse_type(args[0])
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        return {f"Nullable({t})" for t in clickhouse_type(inner)}
    if origin is typing.Literal:
        return {"UInt8"} if all(isinstance(a, int) for a in args) else {"String", "LowCardinality(String)"}
    if origin is list:
        return {f"Array({t})" for t in clickhouse_type(args[0])}
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        fields = msgspec.structs.fields(annotation)
        inner = ", ".join(f"{f.name} {sorted(clickhouse_type(f.type))[0]}" for f in fields)
        return {f"Tuple({inner})"}
    return {
        str: {"String", "LowCardinality(String)"},
        bool: {"Bool"},
        float: {"Float32", "Float64"},
        int: {"UInt64"},  # the only integers are counts (>= 0)
        datetime: {"DateTime64(3, 'UTC')"},
    }[annotation]


@pytest.fixture
def columns(open_chdb):
    client = open_chdb()
    migrate(client, "pd", ttl_days=30)

    def describe(table: str) -> dict[str, str]:
        rows = client.query(f"DESCRIBE TABLE pd.{table}").result_rows
        return {row[0]: " ".join(row[1].split()).replace("( ", "(").replace(" )", ")") for row in rows}

    return describe


def test_the_landing_table_has_exactly_the_struct_fields_with_matching_types(columns):
    landing = columns("enriched_post_v1")
    fields = msgspec.structs.fields(EnrichedPost)
    assert list(landing) == [f.name for f in fields]
    hints = typing.get_type_hints(EnrichedPost, include_extras=True)
    for field in fields:
        assert landing[field.name] in clickhouse_type(hints[field.name]), field.name


def test_posts_holds_every_field_of_the_struct(columns):
    posts = columns("posts")
    kept = [f.name for f in msgspec.structs.fields(EnrichedPost) if f.name not in NOT_IN_POSTS]
    counters = [f.name for f in msgspec.structs.fields(PostMetrics)]
    assert set(kept + counters) <= set(posts)
    assert set(posts) - set(kept + counters) == {"inserted_at"}  # nothing the struct does not know
    hints = typing.get_type_hints(EnrichedPost, include_extras=True)
    for name in kept:
        nullable_as_empty = {t.removeprefix("Nullable(").removesuffix(")") for t in clickhouse_type(hints[name])}
        assert posts[name] in clickhouse_type(hints[name]) | nullable_as_empty, name  # NULL text is stored as ''
