"""Push endpoint batch validation: every bad item reported by index, nothing accepted from a bad batch."""

from __future__ import annotations

from pipeline.connectors.push import validate_batch

GOOD = {"id": "a1", "source": "http", "text": "hello", "created_at": "2024-05-01T12:00:00Z"}


def test_a_valid_batch_becomes_posts_with_schema_and_version_filled_in(settings):
    posts = validate_batch({"posts": [GOOD, GOOD | {"id": "a2", "metrics": {"likes": 3}}]}, settings)
    assert [p.id for p in posts] == ["a1", "a2"] and posts[1].metrics.likes == 3


def test_every_bad_item_is_reported_with_its_index_and_reason(settings):
    errors = validate_batch(
        {"posts": [GOOD, GOOD | {"created_at": "yesterday"}, {"id": "x"}, "text", GOOD | {"text": "x" * 6000}]},
        settings,
    )
    assert [(e["index"], e["reason"]) for e in errors] == [
        (1, "wrong_type"),
        (2, "missing_field"),
        (3, "not_an_object"),
        (4, "text_too_long"),
    ]
    assert errors[0]["detail"].startswith("created_at")


def test_a_payload_without_a_posts_list_is_one_error(settings):
    assert validate_batch([GOOD], settings) == [
        {"index": None, "reason": "not_a_batch", "detail": 'expected {"posts": [...]}'}
    ]
