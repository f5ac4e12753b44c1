"""The dashboard's JSON API over a real chdb database filled with synthetic posts and alerts."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer

from pipeline.analytics.views import VIEWS
from pipeline.sinks import metrics
from pipeline.web.server import create_app

from tests.integration.web.dashboard_data import MARKER_TEXT, OPEN_ALERT_KEY

pytestmark = pytest.mark.integration


def get(url: str) -> tuple[int, dict, object]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read().decode("utf-8"))


def view_url(dashboard, name: str, query: str = "from=now-6h&to=now") -> str:
    return f"{dashboard.url}/api/views/{name}?{query}"


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_every_view_returns_rows_with_its_columns(dashboard, name):
    status, headers, body = get(view_url(dashboard, name, "from=now-6h&to=now&watch=topic_political_affairs"))
    assert status == 200, body
    assert headers["Content-Type"].startswith("application/json")
    assert headers["Cache-Control"] == "no-store"
    assert body["view"] == name and body["title"] == VIEWS[name].title
    assert body["rows"], f"{name} returned no rows"
    assert all(list(row) == list(VIEWS[name].columns) for row in body["rows"])


def test_posts_and_alerts_come_back_intact(dashboard):
    _, _, volume = get(view_url(dashboard, "volume_by_topic"))
    assert sum(row["posts"] for row in volume["rows"]) == dashboard.posts_in_range

    _, _, negative = get(view_url(dashboard, "top_negative_posts"))
    assert negative["rows"][0]["headline"] == MARKER_TEXT  # UTF-8 (CJK + Cyrillic) and markup survive as-is

    _, _, alerts = get(view_url(dashboard, "open_alerts"))
    assert {(a["watch"], a["key"], a["severity"]) for a in alerts["rows"]} == {
        ("topic_political_affairs", OPEN_ALERT_KEY, "critical"),
        ("hk_mainland_tourists", "all", "warning"),
    }  # the resolved alert is not open


def test_time_range_and_bucket_are_resolved_and_reported(dashboard):
    _, _, body = get(view_url(dashboard, "volume_by_topic", "from=now-6h&to=now&points=36"))
    params = body["params"]
    span = datetime.fromisoformat(params["end"]) - datetime.fromisoformat(params["start"])
    assert span.total_seconds() == 6 * 3600
    assert params["bucket"] == 600  # 6 h / 36 points -> the 10-minute step
    buckets = {datetime.fromisoformat(row["t"]).timestamp() for row in body["rows"]}
    assert all(t % 600 == 0 for t in buckets)

    _, _, narrow = get(view_url(dashboard, "volume_by_topic", "from=now-30m&to=now&bucket=300"))
    assert narrow["params"]["bucket"] == 300
    assert 0 < sum(r["posts"] for r in narrow["rows"]) < dashboard.posts_in_range


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/api/views/no_such_view", 404, "unknown view"),
        ("/api/views/volume_by_topic?from=yesterday", 400, "not a time"),
        ("/api/views/volume_by_topic?from=now&to=now-1h", 400, "empty range"),
        ("/api/views/volume_by_topic?bucket=-5", 400, "bucket"),
        ("/api/views/watch_detail?from=now-1h", 400, "watch"),
    ],
)
def test_bad_requests_are_rejected_with_a_reason(dashboard, path, status, message):
    code, _, body = get(f"{dashboard.url}{path}")
    assert code == status
    assert message in body["error"]


def test_healthz_and_page_and_catalogue(dashboard):
    status, _, body = get(f"{dashboard.url}/healthz")
    assert (status, body) == (200, {"status": "ok"})

    _, _, catalogue = get(f"{dashboard.url}/api/views")
    assert {v["name"] for v in catalogue} == set(VIEWS)

    with urllib.request.urlopen(f"{dashboard.url}/", timeout=30) as response:
        page = response.read().decode("utf-8")
        csp = response.headers["Content-Security-Policy"]
    assert '<script type="module" src="/static/app.js">' in page
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    with urllib.request.urlopen(f"{dashboard.url}/static/charts.js", timeout=30) as response:
        assert "javascript" in response.headers["Content-Type"]


def test_dead_letter_count_comes_from_the_worker_counter(dashboard):
    _, _, before = get(f"{dashboard.url}/api/process")
    metrics.DLQ.labels(reason="not_json").inc(3)
    _, _, after = get(f"{dashboard.url}/api/process")
    assert after["dlq_total"] == before["dlq_total"] + 3
    assert after["dlq_by_reason"]["not_json"] == before["dlq_by_reason"].get("not_json", 0) + 3


async def test_queries_run_on_the_executor_and_failures_are_reported():
    """A failing database yields 503 on /healthz and 502 with the reason on a view, never a hang."""
    threads: list[str] = []

    def broken_query(sql: str, parameters: dict | None) -> list[tuple]:
        threads.append(threading.current_thread().name)
        raise RuntimeError("chdb session closed")

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-query") as executor:
        async with TestClient(TestServer(create_app(broken_query, "pd", executor=executor))) as client:
            health = await client.get("/healthz")
            view = await client.get("/api/views/open_alerts")
            assert health.status == 503 and "chdb session closed" in (await health.json())["error"]
            assert view.status == 502 and "chdb session closed" in (await view.json())["error"]
    assert len(threads) == 2 and all(name.startswith("test-query") for name in threads)
