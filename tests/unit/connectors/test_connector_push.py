"""Push endpoint: batch validation (every bad item reported by index, nothing accepted from a bad
batch), the startup check of its settings, secrets never from the command line, connection limits."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from pipeline.cli import secrets_from_files
from pipeline.connectors.push import PushEndpoint, validate_batch

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


@pytest.mark.parametrize(
    "options",
    [{"token": 12345}, {"token": "short"}, {"token": "t" * 20, "port": 70000}, {"token": "t" * 20, "max_body_bytes": 10}],
    ids=["numeric-token", "short-token", "bad-port", "body-below-message-limit"],
)
def test_bad_configuration_stops_the_endpoint_at_start(settings, options, monkeypatch):
    monkeypatch.delenv("PUSH_TOKEN", raising=False)
    with pytest.raises(ValueError, match="push endpoint needs"):
        PushEndpoint(settings, **options)


def test_the_token_comes_from_a_file_or_the_environment_as_a_string(settings, tmp_path, monkeypatch):
    (tmp_path / "token").write_text("0123456789012345678\n")
    assert PushEndpoint(settings, token_file=tmp_path / "token").token == "0123456789012345678"
    monkeypatch.setenv("PUSH_TOKEN", "9876543210987654321")
    assert PushEndpoint(settings).token == "9876543210987654321"


def test_the_command_line_refuses_a_secret_and_reads_it_from_a_file(tmp_path):
    with pytest.raises(SystemExit, match="ps"):
        secrets_from_files({"token": "s3cret-on-the-command-line"})
    (tmp_path / "t").write_text("12345678901234567890")
    assert secrets_from_files({"token_file": str(tmp_path / "t"), "port": 1}) == {"port": 1, "token": "12345678901234567890"}


async def test_idle_and_surplus_connections_are_closed(settings):
    """A client that connects and sends nothing is dropped after read_timeout_s; connections past
    max_connections are closed as they open (100 slow clients once held the endpoint for 25 s)."""
    endpoint = PushEndpoint(settings, token="t" * 20, read_timeout_s=0.5, max_connections=3, port=1)
    runner = web.AppRunner(endpoint.app(None), keepalive_timeout=endpoint.read_timeout_s)
    await runner.setup()
    endpoint._limit_connections(runner.server)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(5)]
        closed = []
        for reader, _ in streams:
            try:
                closed.append(await asyncio.wait_for(reader.read(), 3.0) == b"")
            except asyncio.TimeoutError:
                closed.append(False)
        assert closed == [True] * 5  # two at once (over the cap), three after the read timeout
        for _, writer in streams:
            writer.close()
    finally:
        await runner.cleanup()
