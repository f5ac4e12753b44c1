"""Local stand-ins for the source APIs: an aiohttp server answering with recorded responses in each API's format."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

RECORDED = Path(__file__).resolve().parents[2] / "fixtures" / "recorded"


def recorded_bytes(api: str, name: str) -> bytes:
    return (RECORDED / api / name).read_bytes()


def recorded_json(api: str, name: str):
    return json.loads(recorded_bytes(api, name))


def json_reply(body: bytes | dict, status: int = 200, headers: dict | None = None) -> web.Response:
    data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return web.Response(body=data, status=status, headers=headers, content_type="application/json")


@dataclass
class RecordedApi:
    """Routes path -> handler; `failures` are answered first, one per request, before the handler runs."""

    routes: dict[str, Callable]
    failures: list[Callable[[], web.StreamResponse]] = field(default_factory=list)
    requests: list[web.Request] = field(default_factory=list)
    base_url: str = ""

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        if self.failures:
            return self.failures.pop(0)()
        return await self.routes[request.path](request)


@pytest.fixture
async def recorded_api():
    """Start servers with `await recorded_api(routes, failures)`; all are closed after the test."""
    servers: list[TestServer] = []

    async def start(routes: dict[str, Callable], failures: list | None = None) -> RecordedApi:
        api = RecordedApi(routes, list(failures or []))
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", api.dispatch)
        server = TestServer(app)
        await server.start_server()
        servers.append(server)
        api.base_url = str(server.make_url("")).rstrip("/")
        return api

    yield start
    for server in servers:
        await server.close()


async def collect(aiter) -> list:
    return [item async for item in aiter]
