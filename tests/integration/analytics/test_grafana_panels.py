"""Every ClickHouse panel of the committed Grafana dashboard runs on the real engine and shows data.

Macros are expanded exactly as grafana-clickhouse-datasource v4 does (pkg/macros/macros.go):
``$__fromTime_ms`` -> ``fromUnixTimestamp64Milli(ms)``, ``$__interval_s`` -> whole seconds, and
dashboard variables (``${db}``, ``${watch:sqlstring}``) are interpolated by Grafana beforehand.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest

from pipeline.analytics.grafana import DASHBOARD_PATH
from pipeline.forecasting.service import FORECAST_COLUMNS
from pipeline.schemas import AlertState
from tests.integration.analytics.analytics_samples import make_alert, make_post

pytestmark = pytest.mark.integration

NOW = datetime.now(timezone.utc).replace(second=0, microsecond=0)
FROM, TO = NOW - timedelta(hours=6), NOW + timedelta(minutes=1)
TOPICS = ("political_affairs", "cultural_exchanges", "economic_trade")
LABELS = {"negative": -0.7, "neutral": 0.0, "positive": 0.6}


def sqlstring(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def expand(sql: str, variables: dict[str, str], interval_s: int) -> str:
    """Grafana's variable interpolation followed by the plugin's macro expansion."""
    sql = re.sub(r"\$\{(\w+):sqlstring\}", lambda m: sqlstring(variables[m.group(1)]), sql)
    sql = re.sub(r"\$\{(\w+)\}", lambda m: variables[m.group(1)], sql)
    sql = sql.replace("$__fromTime_ms", f"fromUnixTimestamp64Milli({int(FROM.timestamp() * 1000)})")
    sql = sql.replace("$__toTime_ms", f"fromUnixTimestamp64Milli({int(TO.timestamp() * 1000)})")
    sql = sql.replace("$__interval_s", str(interval_s))
    assert "$" not in sql, f"unexpanded macro or variable in {sql}"
    return sql


@pytest.fixture
def filled(sink):
    posts = []
    for i in range(120):
        label = list(LABELS)[i % 3]
        posts.append(make_post(
            f"p{i}", NOW - timedelta(minutes=2 * i), source=("wechat", "weibo", "x")[i % 3],
            topic=TOPICS[i % len(TOPICS)], secondary_topic=f"sub{i % 5}", countries=[["RU"], ["CN", "US"], []][i % 3],
            sentiment_label=label, sentiment_score=LABELS[label], model_path=("learned", "transformer", "lexical")[i % 3],
            pageviews=10 * i, looking_at=i, received_at=NOW, processed_at=NOW,
        ))  # fmt: skip
    sink.insert_posts(posts)
    sink.insert_alerts([
        make_alert("a1", "ru-sanctions", AlertState.OPEN, NOW - timedelta(minutes=30)),
        make_alert("a1", "ru-sanctions", AlertState.UPDATED, NOW - timedelta(minutes=15), observed=20),
        make_alert("a2", "ru-sanctions", AlertState.OPEN, NOW - timedelta(hours=2), key="CN"),
        make_alert("a2", "ru-sanctions", AlertState.RESOLVED, NOW - timedelta(hours=1), key="CN"),
    ])  # fmt: skip
    origin = NOW.replace(minute=0) - timedelta(hours=1)
    sink.insert_rows("forecasts", FORECAST_COLUMNS, [
        ("ru-sanctions", "all", "volume", "hour", origin + timedelta(hours=step), origin, step, 10.0, 5.0, 15.0, 2.0,
         20.0, "test", NOW) for step in range(24)
    ])  # fmt: skip
    return sink


def _dashboard() -> dict:
    return json.loads(DASHBOARD_PATH.read_text(encoding="utf-8"))


def _variables(dashboard: dict, sink) -> dict[str, str]:
    templating = {v["name"]: v for v in dashboard["templating"]["list"]}
    variables = {"db": templating["db"]["query"]}
    watches = sink.query(expand(templating["watch"]["query"], variables, 60), {})
    assert watches == [("ru-sanctions",)]
    return {**variables, "watch": watches[0][0]}


def _clickhouse_panels(dashboard: dict) -> list[dict]:
    return [p for p in dashboard["panels"] if p.get("datasource", {}).get("type") == "grafana-clickhouse-datasource"]


@pytest.mark.parametrize("interval_s", [15, 300, 3600])
def test_every_clickhouse_panel_returns_rows(filled, interval_s):
    dashboard = _dashboard()
    variables = _variables(dashboard, filled)
    panels = _clickhouse_panels(dashboard)
    assert len(panels) >= 8
    for panel in panels:
        for target in panel["targets"]:
            rows = filled.query(expand(target["rawSql"], variables, interval_s), {})
            assert rows, f"panel {panel['title']!r} returned no rows"


def test_panels_show_the_expected_figures(filled):
    dashboard = _dashboard()
    variables = _variables(dashboard, filled)
    by_title = {p["title"]: expand(p["targets"][0]["rawSql"], variables, 3600) for p in _clickhouse_panels(dashboard)}
    posts_by_topic = filled.query(by_title["Posts by topic"], {})
    assert sum(row[2] for row in posts_by_topic) == 120
    open_alerts = filled.query(by_title["Open alerts"], {})
    assert [(row[0], row[4], row[7]) for row in open_alerts] == [("a1", "updated", 20)]
    health = filled.query(by_title["Pipeline throughput and model path"], {})
    assert [round(share, 6) for share in health[-1][2:5]] == [round(1 / 3, 6)] * 3


def test_alert_transitions_are_annotations(filled):
    dashboard = _dashboard()
    variables = _variables(dashboard, filled)
    (annotation,) = dashboard["annotations"]["list"]
    rows = filled.query(expand(annotation["target"]["rawSql"], variables, 60), {})
    assert [(row[1].split(":")[0], row[3].split(",")[0]) for row in rows] == [
        ("OPEN warning surge", "open"), ("RESOLVED warning surge", "resolved"),
        ("OPEN warning surge", "open"), ("UPDATED warning surge", "updated"),
    ]  # fmt: skip
    assert rows[-1][2].startswith("20 posts (baseline ") and rows[-1][2].endswith("; alert a1")
