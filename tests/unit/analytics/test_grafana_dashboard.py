"""The committed Grafana dashboard is exactly what the views generate, and covers every view."""

from __future__ import annotations

import json

import pytest

from pipeline.analytics.grafana import OUTLOOK_LAYOUT, DASHBOARD_PATH, build_dashboard, dashboard_json, grafana_sql
from pipeline.analytics.views import VIEWS, View


def test_committed_dashboard_is_up_to_date():
    assert DASHBOARD_PATH.read_text(encoding="utf-8") == dashboard_json(), (
        "deploy/grafana/dashboards/pd-monitor.json is stale: run `python -m pipeline.analytics.grafana`"
    )


def test_every_view_is_a_panel_running_its_sql():
    panels = {p["description"].split("`")[1]: p for p in build_dashboard()["panels"] if p.get("description")}
    shown = {**VIEWS, **{view.name: view for view, _, _ in OUTLOOK_LAYOUT}}  # + forecasts and attitude
    assert set(panels) == set(shown)
    for name, view in shown.items():
        assert panels[name]["targets"][0]["rawSql"] == grafana_sql(view)
        assert panels[name]["type"] == ("timeseries" if view.kind == "timeseries" else "table")


def test_parameters_become_plugin_macros():
    sql = grafana_sql(VIEWS["watch_detail"])
    assert "{" not in sql.replace("${db}", "").replace("${watch:sqlstring}", "")
    assert "$__fromTime_ms" in sql and "$__toTime_ms" in sql and "${db}.alerts" in sql
    assert "$__interval_s" in grafana_sql(VIEWS["volume_by_topic"])


def test_unknown_parameter_is_refused():
    with pytest.raises(ValueError, match="lang"):
        grafana_sql(View("x", "x", "SELECT 1 WHERE lang = {lang:String}", ("1",)))


def test_panels_do_not_overlap():
    cells = set()
    for panel in build_dashboard()["panels"]:
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24
        area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & area, panel["title"]
        cells |= area


def test_database_is_a_dashboard_constant():
    variables = {v["name"]: v for v in json.loads(dashboard_json("analytics"))["templating"]["list"]}
    assert variables["db"]["query"] == "analytics"
