"""HTTP push endpoint: ``POST /v1/posts`` with ``{"posts": [...]}`` and a bearer token.

All or nothing: a batch with any invalid item is refused with 422 and one error per bad item, and
nothing is produced; a valid batch is answered 202 only after the broker acknowledged every post,
so a client that got 202 may forget the batch and one that got anything else may resend it.
"""

from __future__ import annotations

import asyncio
import hmac
import os
from typing import Any

import orjson
from aiohttp import web

from pipeline.connectors import metrics
from pipeline.connectors.base import KafkaSink
from pipeline.connectors.validation import post_from_mapping
from pipeline.schemas import RawPost, Rejection
from pipeline.settings import Settings

SINK_KEY = web.AppKey("sink", KafkaSink)


def validate_batch(payload: Any, settings: Settings) -> list[RawPost] | list[dict]:
    """The batch's posts, or (when any item is bad) the error list ``[{"index", "reason", "detail"}]``."""
    if not isinstance(payload, dict) or not isinstance(payload.get("posts"), list):
        return [{"index": None, "reason": "not_a_batch", "detail": 'expected {"posts": [...]}'}]
    posts: list[RawPost] = []
    errors: list[dict] = []
    for index, item in enumerate(payload["posts"]):
        parsed = post_from_mapping(item, settings)
        if isinstance(parsed, Rejection):
            errors.append({"index": index, "reason": parsed.reason.value, "detail": parsed.detail})
        else:
            posts.append(parsed)
    return errors or posts


def _json_error(status: int, reason: str, detail: str, **extra: Any) -> web.Response:
    body = orjson.dumps({"errors": [{"index": None, "reason": reason, "detail": detail}]})
    return web.Response(status=status, body=body, content_type="application/json", **extra)


class PushEndpoint:
    """An aiohttp app in front of a KafkaSink; `run` serves it until cancelled."""

    kind = "http"

    def __init__(
        self,
        settings: Settings,
        *,
        token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 8088,
        max_body_bytes: int = 4 * 1024 * 1024,
        name: str | None = None,
    ) -> None:
        self.settings = settings
        self.token = token or os.environ.get("PUSH_TOKEN")
        if not self.token:
            raise ValueError("push endpoint needs token= or PUSH_TOKEN")
        self.host = host
        self.port = port
        self.max_body_bytes = max_body_bytes
        self.name = name or self.kind

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
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _json_error(413, "too_large", f"body over limit {self.max_body_bytes} bytes")
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return _json_error(400, "not_json", str(exc))
        result = validate_batch(payload, self.settings)
        if result and isinstance(result[0], dict):
            return web.json_response({"errors": result}, status=422)
        sink = request.app[SINK_KEY]
        futures = [await sink.send_post(post) for post in result]
        try:
            await asyncio.gather(*futures)
        except Exception as exc:  # noqa: BLE001 - any producer failure means "not accepted, resend"
            metrics.FETCH_ERRORS.labels(self.name, "produce").inc()
            return _json_error(503, "produce_failed", f"{type(exc).__name__}: {exc}")
        metrics.POSTS_PRODUCED.labels(self.name).inc(len(futures))
        return web.json_response({"accepted": len(futures)}, status=202)

    def app(self, sink: KafkaSink) -> web.Application:
        app = web.Application(client_max_size=self.max_body_bytes)
        app[SINK_KEY] = sink
        app.router.add_post("/v1/posts", self.handle_posts)
        return app

    async def run(self) -> None:
        async with KafkaSink(self.settings, self.name) as sink:
            runner = web.AppRunner(self.app(sink))
            await runner.setup()
            await web.TCPSite(runner, self.host, self.port).start()
            try:
                await asyncio.Event().wait()
            finally:
                await runner.cleanup()
