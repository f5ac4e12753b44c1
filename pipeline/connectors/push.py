"""HTTP push endpoint: ``POST /v1/posts`` with ``{"posts": [...]}`` and a bearer token.

All or nothing: a batch with any invalid item is refused with 422 and one error per bad item, and
nothing is produced; a valid batch is answered 202 only after the broker acknowledged every post,
so a client that got 202 may forget the batch and one that got anything else may resend it.

The token is a string from the environment (`PUSH_TOKEN`) or a file (`token_file=`), never the
command line (which `ps` shows to every user); the settings are checked when the endpoint is
built, so a bad one stops it at start instead of failing every request. Slow or idle clients are
cut off after `read_timeout_s` and at most `max_connections` are served at once.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from pipeline.connectors import metrics
from pipeline.connectors.validation import post_from_mapping
from pipeline.kafka import SharedProducer
from pipeline.schemas import RawPost, Rejection
from pipeline.settings import Settings, Topics

log = logging.getLogger(__name__)

PRODUCER_KEY = web.AppKey("producer", SharedProducer)
MIN_TOKEN_CHARS = 16


def validate_batch(payload: Any, settings: Settings) -> list[RawPost] | list[dict]:
    """The batch's posts, or (when any item is bad) the error list ``[{"index", "reason", "detail"}]``."""
    if not isinstance(payload, dict) or not isinstance(payload.get("posts"), list):
        return [{"index": None, "reason": "not_a_batch", "detail": 'expected {"posts": [...]}'}]
    posts: list[RawPost] = []
    errors: list[dict] = []
    for index, item in enumerate(payload["posts"]):
        try:
            parsed = post_from_mapping(item, settings)
        except Exception as exc:  # a bug in validation must cost the client a 422, not a 500
            log.exception("validating item %d failed", index)
            parsed = Rejection.of_exception(exc)
        if isinstance(parsed, Rejection):
            errors.append({"index": index, "reason": parsed.reason.value, "detail": parsed.detail})
        else:
            posts.append(parsed)
    return errors or posts


def _json_error(status: int, reason: str, detail: str, **extra: Any) -> web.Response:
    body = orjson.dumps({"errors": [{"index": None, "reason": reason, "detail": detail}]})
    return web.Response(status=status, body=body, content_type="application/json", **extra)


class PushEndpoint:
    """An aiohttp app in front of the pipeline's producer; `run` serves it until cancelled."""

    kind = "http"

    def __init__(
        self,
        settings: Settings,
        *,
        token: str | None = None,
        token_file: str | Path | None = None,
        host: str = "127.0.0.1",
        port: int = 8088,
        max_body_bytes: int = 4 * 1024 * 1024,
        read_timeout_s: float = 10.0,
        max_connections: int = 256,
        name: str | None = None,
    ) -> None:
        self.settings = settings
        if token_file is not None:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        self.token = token if token is not None else os.environ.get("PUSH_TOKEN")
        self.host = host
        self.port = port
        self.max_body_bytes = max_body_bytes
        self.read_timeout_s = read_timeout_s
        self.max_connections = max_connections
        self.name = name or self.kind
        self._check()

    def _check(self) -> None:
        """Refuse to start with settings that would fail every request."""
        problems = []
        if not isinstance(self.token, str) or len(self.token) < MIN_TOKEN_CHARS:
            problems.append(f"a token of at least {MIN_TOKEN_CHARS} characters (env PUSH_TOKEN or token_file=PATH)")
        if not isinstance(self.port, int) or not 0 < self.port < 65536:
            problems.append(f"a TCP port (got {self.port!r})")
        if not isinstance(self.max_body_bytes, int) or self.max_body_bytes < self.settings.max_message_bytes:
            problems.append(f"max_body_bytes >= MAX_MESSAGE_BYTES ({self.settings.max_message_bytes})")
        if not isinstance(self.read_timeout_s, (int, float)) or self.read_timeout_s <= 0:
            problems.append("read_timeout_s > 0")
        if not isinstance(self.max_connections, int) or self.max_connections < 1:
            problems.append("max_connections >= 1")
        if problems:
            raise ValueError("push endpoint needs " + "; ".join(problems))

    def _authorised(self, request: web.Request) -> bool:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), self.token.encode())

    async def handle_posts(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _json_error(
                401, "unauthorized", "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
            )
        if request.content_length is not None and request.content_length > self.max_body_bytes:
            return _json_error(413, "too_large", f"{request.content_length} bytes > limit {self.max_body_bytes}")
        try:
            body = await asyncio.wait_for(request.read(), self.read_timeout_s)
        except web.HTTPRequestEntityTooLarge:
            return _json_error(413, "too_large", f"body over limit {self.max_body_bytes} bytes")
        except asyncio.TimeoutError:
            return _json_error(408, "timeout", f"body not received within {self.read_timeout_s} s")
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return _json_error(400, "not_json", str(exc))
        result = validate_batch(payload, self.settings)
        if result and isinstance(result[0], dict):
            return web.json_response({"errors": result}, status=422)
        outbox = await request.app[PRODUCER_KEY].outbox()
        raw_topic = self.settings.topic(Topics.RAW)
        for post in result:  # CreateTime = the post's own time, so replays can select by it
            outbox.send(raw_topic, post.key, post.encode(), post.created_at.timestamp())
        try:
            await outbox.delivered()
        except Exception as exc:  # noqa: BLE001 - any producer failure means "not accepted, resend"
            metrics.FETCH_ERRORS.labels(self.name, "produce").inc()
            return _json_error(503, "produce_failed", f"{type(exc).__name__}: {exc}")
        metrics.POSTS_PRODUCED.labels(self.name).inc(len(result))
        return web.json_response({"accepted": len(result)}, status=202)

    def app(self, producer: SharedProducer) -> web.Application:
        app = web.Application(client_max_size=self.max_body_bytes)
        app[PRODUCER_KEY] = producer
        app.router.add_post("/v1/posts", self.handle_posts)
        return app

    async def run(self) -> None:
        async with SharedProducer(self.settings, client_id=f"pd-connector-{self.name}") as producer:
            # aiohttp closes a connection that sends no request within keepalive_timeout (from its start)
            runner = web.AppRunner(self.app(producer), keepalive_timeout=self.read_timeout_s, access_log=None)
            await runner.setup()
            self._limit_connections(runner.server)
            await web.TCPSite(runner, self.host, self.port).start()
            log.info("push endpoint listening on http://%s:%d/v1/posts", self.host, self.port)
            try:
                await asyncio.Event().wait()
            finally:
                await runner.cleanup()

    def _limit_connections(self, server: web.Server) -> None:
        """Connections beyond `max_connections` are closed as they open (aiohttp tracks the open
        ones in `server.connections`; it has no cap of its own)."""
        opened = server.connection_made

        def connection_made(handler, transport) -> None:
            opened(handler, transport)
            if len(server.connections) > self.max_connections:
                metrics.FETCH_ERRORS.labels(self.name, "too_many_connections").inc()
                handler.force_close()
                transport.close()

        server.connection_made = connection_made
