"""The account report over the dashboard server: what `python -m pipeline report` uses while a worker owns chdb."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta

import pytest

from pipeline.analytics.report import build_report, render
from tests.integration.web.dashboard_data import DB

pytestmark = pytest.mark.integration


def get(dashboard, **query) -> tuple[int, str, str]:
    url = f"{dashboard.url}/api/report?{urllib.parse.urlencode(query)}"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


@pytest.mark.parametrize("fmt", ["text", "csv", "json"])
def test_report_route_renders_the_same_report_as_the_library(dashboard, fmt):
    start = (dashboard.now - timedelta(days=2)).replace(microsecond=0)
    end = (dashboard.now + timedelta(days=1)).replace(microsecond=0)
    status, content_type, body = get(
        dashboard, account="embassy", **{"from": start.isoformat(), "to": end.isoformat()}, format=fmt, top=3
    )
    assert status == 200, body
    expected = render(build_report(dashboard.sink.query, DB, "embassy", start, end, top_n=3), fmt)
    assert body == expected
    assert content_type.startswith({"text": "text/plain", "csv": "text/csv", "json": "application/json"}[fmt])
    if fmt == "json":
        assert json.loads(body)["articles"] > 0


def test_bad_report_requests_are_400(dashboard):
    assert get(dashboard, account="embassy", **{"from": "yesterday", "to": "2020-01-01"})[0] == 400
    assert get(dashboard, **{"from": "2020-01-01", "to": "2021-01-01"})[0] == 400
    assert get(dashboard, account="a", **{"from": "2020-01-01", "to": "2021-01-01"}, format="pdf")[0] == 400
