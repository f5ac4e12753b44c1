"""A chdb database filled with synthetic posts and alerts, and the dashboard served on loopback.

The server runs on an event loop in a background thread, the way the worker hosts it next to
its stream agents, so the tests themselves can stay synchronous (HTTP client, webdriver).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

import pytest
from aiohttp import web

from pipeline.sinks.clickhouse import ClickHouseSink, connect, migrate
from pipeline.web.server import create_app
from tests.integration.web.dashboard_data import DB, dataset


@dataclass
class Dashboard:
    url: str
    sink: ClickHouseSink
    posts_in_range: int
    now: datetime


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory) -> Iterator[Dashboard]:
    now = datetime.now(timezone.utc)
    client = connect(f"chdb://{tmp_path_factory.mktemp('web') / 'chdb'}")
    migrate(client, DB, 30)
    sink = ClickHouseSink(client, DB)
    posts, alerts = dataset(now)
    sink.insert_posts(posts)
    sink.insert_alerts(alerts)

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="dashboard-loop", daemon=True)
    thread.start()

    async def start() -> web.AppRunner:
        runner = web.AppRunner(create_app(sink.query, DB))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    runner = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    host, port = runner.addresses[0][:2]
    yield Dashboard(url=f"http://{host}:{port}", sink=sink, posts_in_range=len(posts), now=now)
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()
    sink.close()
