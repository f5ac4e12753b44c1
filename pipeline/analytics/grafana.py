"""Generate the Grafana dashboard from `views.VIEWS`, so Grafana and the web UI run the same SQL.

Query parameters become the macros of the grafana-clickhouse-datasource plugin (v4):
``{start}`` -> ``$__fromTime_ms``, ``{end}`` -> ``$__toTime_ms``, ``{bucket}`` -> ``$__interval_s``;
``{watch}`` becomes the dashboard variable ``${watch:sqlstring}`` (Grafana quotes and escapes it)
and ``{db}`` the constant variable ``${db}``. Worker metrics panels query Prometheus.

Regenerate the committed JSON with ``python -m pipeline.analytics.grafana`` (a unit test fails
when it is stale).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from pipeline.analytics import attitude
from pipeline.analytics.views import VIEWS, View
from pipeline.forecasting import api as forecasts
from pipeline.settings import PROJECT_ROOT, Settings

DASHBOARD_PATH = PROJECT_ROOT / "deploy" / "grafana" / "dashboards" / "pd-monitor.json"
CLICKHOUSE_DS = {"type": "grafana-clickhouse-datasource", "uid": "clickhouse"}
PROMETHEUS_DS = {"type": "prometheus", "uid": "prometheus"}

PARAMETER_MACROS = {
    "start": "$__fromTime_ms",
    "end": "$__toTime_ms",
    "bucket": "$__interval_s",
    "watch": "${watch:sqlstring}",
}
_PARAMETER = re.compile(r"\{(\w+):[^{}]+\}")

# (title, PromQL, unit) of the worker panels; metric names are those of pipeline/sinks/metrics.py and
# pipeline/notify/alertmanager.py.
WORKER_PANELS = (
    ("Consumer lag (messages)", "sum by (topic) (pd_consumer_lag)", "short"),
    ("Messages in per second", "sum by (stage) (rate(pd_messages_in_total[5m]))", "ops"),
    ("Dead letters per second", "sum by (reason) (rate(pd_dlq_total[5m]))", "ops"),
    ("Model path share", "sum by (path) (rate(pd_model_path_total[5m])) / scalar(sum(rate(pd_model_path_total[5m])))",
     "percentunit"),
    ("End-to-end latency p95", "histogram_quantile(0.95, sum by (le) (rate(pd_e2e_latency_seconds_bucket[5m])))", "s"),
    ("Seconds since last batch", "time() - pd_stage_last_progress_seconds", "s"),
    ("Processes answering per job", 'count by (job) (up{job=~"pd-.+"} == 1)', "short"),
    ("Alertmanager bridge requests per second", "sum by (outcome) (rate(pd_bridge_alertmanager_requests_total[5m]))",
     "ops"),
)  # fmt: skip

# Every alert transition as an annotation on the time series (columns as Grafana maps them: time,
# title, text, tags); colour by the kind of transition in Grafana's annotation filter by tag.
ALERT_ANNOTATION_SQL = """
SELECT updated_at AS time,
       concat(upper(state), ' ', severity, ' ', kind, ': ', watch, '/', key) AS title,
       concat(toString(observed), ' posts (baseline ', ifNull(toString(round(baseline, 1)), 'n/a'), '), ',
              toString(round(negative_share * 100)), '% negative, score ', toString(round(score, 2)),
              if(empty(top_terms), '', concat('; ', arrayStringConcat(arraySlice(top_terms, 1, 5), ', '))),
              '; alert ', id) AS text,
       arrayStringConcat([state, severity, kind, watch], ',') AS tags
FROM ${db}.alerts FINAL
WHERE updated_at >= $__fromTime_ms AND updated_at < $__toTime_ms
ORDER BY updated_at""".strip()

# Panel order and placement on the dashboard: (view name, width in grid columns of 24).
LAYOUT = (
    ("volume_by_topic", 12), ("sentiment_by_topic", 12),
    ("volume_by_country", 12), ("sentiment_by_country", 12),
    ("volume_by_language", 12), ("topic_breakdown", 12),
    ("open_alerts", 24), ("top_negative_posts", 24), ("recent_alerts", 24), ("watch_detail", 24),
    ("pipeline_health", 24),
)  # fmt: skip
# The row of forecasts and of the attitude toward China: (view, width, module defining it).
OUTLOOK_LAYOUT = (
    (forecasts.BAND, 24, "pipeline/forecasting/api.py"), (forecasts.OVERVIEW, 24, "pipeline/forecasting/api.py"),
    (attitude.DAILY, 12, "pipeline/analytics/attitude.py"), (attitude.SUMMARY, 12, "pipeline/analytics/attitude.py"),
)  # fmt: skip
PANEL_HEIGHT = 8


def grafana_sql(view: View) -> str:
    """The view's SQL with Grafana macros and variables in place of query parameters."""

    def macro(match: re.Match) -> str:
        name = match.group(1)
        if name not in PARAMETER_MACROS:
            raise ValueError(f"view {view.name!r}: no Grafana macro for parameter {name!r}")
        return PARAMETER_MACROS[name]

    return _PARAMETER.sub(macro, view.sql.replace("{db}", "${db}")).strip()


def _clickhouse_panel(view: View, panel_id: int, grid: dict, source: str = "pipeline/analytics/views.py") -> dict:
    is_series = view.kind == "timeseries"
    return {
        "id": panel_id,
        "type": "timeseries" if is_series else "table",
        "title": view.title,
        "description": f"View `{view.name}` of {source}",
        "datasource": CLICKHOUSE_DS,
        "gridPos": grid,
        "fieldConfig": {"defaults": {"unit": "short"}, "overrides": _share_overrides(view)},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}} if is_series else {},
        "targets": [
            {
                "refId": "A",
                "datasource": CLICKHOUSE_DS,
                "editorType": "sql",
                "queryType": "timeSeries" if is_series else "table",
                "format": 0 if is_series else 1,
                "rawSql": grafana_sql(view),
            }
        ],
    }


def _share_overrides(view: View) -> list[dict]:
    return [
        {"matcher": {"id": "byName", "options": column}, "properties": [{"id": "unit", "value": "percentunit"}]}
        for column in view.columns
        if column.endswith("_share") or column == "share"
    ]


def _prometheus_panel(title: str, expr: str, unit: str, panel_id: int, grid: dict) -> dict:
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": title,
        "datasource": PROMETHEUS_DS,
        "gridPos": grid,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}},
        "targets": [{"refId": "A", "datasource": PROMETHEUS_DS, "expr": expr}],
    }


def _row(title: str, panel_id: int, y: int) -> dict:
    return {"id": panel_id, "type": "row", "title": title, "collapsed": False, "panels": [],
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}}  # fmt: skip


def _place(widths: list[int], y: int) -> tuple[list[dict], int]:
    """Grid positions filling rows of 24 columns left to right; returns them and the next free y."""
    grids, x = [], 0
    for width in widths:
        if x + width > 24:
            x, y = 0, y + PANEL_HEIGHT
        grids.append({"h": PANEL_HEIGHT, "w": width, "x": x, "y": y})
        x += width
    return grids, y + PANEL_HEIGHT


def build_dashboard(database: str | None = None) -> dict:
    """The dashboard JSON (as a dict) for ClickHouse database `database` (default: Settings' default)."""
    database = database or Settings.model_fields["clickhouse_database"].default
    missing = set(VIEWS) - {name for name, _ in LAYOUT}
    if missing:
        raise ValueError(f"views without a place on the dashboard: {sorted(missing)}")
    panels, next_id = [_row("Content (ClickHouse)", 1, 0)], 2
    grids, y = _place([width for _, width in LAYOUT], 1)
    for (name, _), grid in zip(LAYOUT, grids):
        panels.append(_clickhouse_panel(VIEWS[name], next_id, grid))
        next_id += 1
    panels.append(_row("Forecasts and attitude toward China (ClickHouse)", next_id, y))
    next_id += 1
    grids, y = _place([width for _, width, _ in OUTLOOK_LAYOUT], y + 1)
    for (view, _, source), grid in zip(OUTLOOK_LAYOUT, grids):
        panels.append(_clickhouse_panel(view, next_id, grid, source))
        next_id += 1
    panels.append(_row("Workers (Prometheus)", next_id, y))
    next_id += 1
    grids, _ = _place([12] * len(WORKER_PANELS), y + 1)
    for (title, expr, unit), grid in zip(WORKER_PANELS, grids):
        panels.append(_prometheus_panel(title, expr, unit, next_id, grid))
        next_id += 1
    return {
        "uid": "pd-monitor",
        "title": "Public-diplomacy monitor",
        "tags": ["pd-monitor"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "1m",
        "time": {"from": "now-24h", "to": "now"},
        "templating": {
            "list": [
                {"name": "db", "type": "constant", "query": database, "hide": 2,
                 "current": {"text": database, "value": database}},
                {"name": "watch", "type": "query", "label": "Watch", "datasource": CLICKHOUSE_DS,
                 "query": "SELECT DISTINCT watch FROM (SELECT watch FROM ${db}.alerts UNION ALL "
                          "SELECT watch FROM ${db}.forecasts WHERE watch != '') ORDER BY watch", "refresh": 2, "sort": 1,
                 "current": {}, "options": [], "includeAll": False, "multi": False},
            ]
        },  # fmt: skip
        "annotations": {
            "list": [
                {"name": "Alert transitions", "datasource": CLICKHOUSE_DS, "enable": True, "iconColor": "red",
                 "target": {"refId": "Anno", "datasource": CLICKHOUSE_DS, "editorType": "sql", "queryType": "table",
                            "format": 1, "rawSql": ALERT_ANNOTATION_SQL}},
            ]
        },  # fmt: skip
        "panels": panels,
    }


def dashboard_json(database: str | None = None) -> str:
    return json.dumps(build_dashboard(database), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the dashboard to DASHBOARD_PATH (or the path given as the only argument)."""
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else DASHBOARD_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dashboard_json(), encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
