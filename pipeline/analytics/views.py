"""Named analytics queries shared by the built-in web dashboard and the Grafana dashboard.

Each view is one SQL text with a ``{db}`` placeholder and ClickHouse query parameters
(``{start:DateTime64(3, 'UTC')}``, ``{end:...}``, ``{bucket:UInt32}`` seconds, ``{watch:String}``),
so the web UI binds them server-side and `pipeline.analytics.grafana` rewrites them into Grafana
macros: one definition, no drift between the two dashboards.

Time series read the per-minute aggregates of migration 003 (post counts there are exact under
redelivery, mean sentiment is approximate; see that file); tables that list posts read
``posts FINAL``. Buckets are never finer than the one-minute aggregates.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Query = Callable[[str, dict], list[tuple]]

_PARAMETER = re.compile(r"\{(\w+):[^{}]+\}")

_BUCKET = "toStartOfInterval(minute, toIntervalSecond(greatest({bucket:UInt32}, 60)))"
_RANGE = "minute >= {start:DateTime64(3, 'UTC')} AND minute < {end:DateTime64(3, 'UTC')}"
_NEGATIVE_SHARE = "uniqExactMergeIf(post_ids, sentiment_label = 'negative') / uniqExactMerge(post_ids)"
_MEAN_SENTIMENT = "sum(sentiment_sum) / sum(rows)"
_CURRENT_ALERTS = """
    SELECT id, argMax(a.watch, a.updated_at) AS watch, argMax(a.key, a.updated_at) AS key,
           argMax(a.severity, a.updated_at) AS severity, argMax(a.state, a.updated_at) AS state,
           min(a.opened_at) AS opened_at, max(a.updated_at) AS updated_at,
           argMax(a.observed, a.updated_at) AS observed, argMax(a.baseline, a.updated_at) AS baseline,
           argMax(a.negative_share, a.updated_at) AS negative_share, argMax(a.score, a.updated_at) AS score,
           argMax(a.top_terms, a.updated_at) AS top_terms
    FROM {db}.alerts AS a
    GROUP BY id"""


@dataclass(frozen=True)
class View:
    """One dashboard query; `columns` names the result columns in order, `kind` picks the panel."""

    name: str
    title: str
    sql: str
    columns: tuple[str, ...]
    kind: Literal["timeseries", "table"] = "timeseries"

    @property
    def parameters(self) -> frozenset[str]:
        return frozenset(_PARAMETER.findall(self.sql))


def _volume_by(dimension: str, table: str) -> str:
    return f"""
SELECT {_BUCKET} AS t, {dimension}, uniqExactMerge(post_ids) AS posts
FROM {{db}}.{table}
WHERE {_RANGE}
GROUP BY t, {dimension}
ORDER BY t, {dimension}"""


def _sentiment_by(dimension: str, table: str) -> str:
    return f"""
SELECT {_BUCKET} AS t, {dimension}, {_MEAN_SENTIMENT} AS mean_sentiment, {_NEGATIVE_SHARE} AS negative_share
FROM {{db}}.{table}
WHERE {_RANGE}
GROUP BY t, {dimension}
ORDER BY t, {dimension}"""


_VIEWS = (
    View("volume_by_topic", "Posts by topic", _volume_by("topic", "posts_by_minute"), ("t", "topic", "posts")),
    View(
        "sentiment_by_topic",
        "Sentiment by topic",
        _sentiment_by("topic", "posts_by_minute"),
        ("t", "topic", "mean_sentiment", "negative_share"),
    ),
    View("volume_by_language", "Posts by language", _volume_by("lang", "posts_by_minute"), ("t", "lang", "posts")),
    View(
        "volume_by_country",
        "Posts by mentioned country",
        _volume_by("country", "posts_by_country_minute"),
        ("t", "country", "posts"),
    ),
    View(
        "sentiment_by_country",
        "Sentiment by mentioned country",
        _sentiment_by("country", "posts_by_country_minute"),
        ("t", "country", "mean_sentiment", "negative_share"),
    ),
    View(
        "topic_breakdown",
        "Topics and secondary topics",
        f"""
SELECT topic, secondary_topic, uniqExactMerge(post_ids) AS posts,
       posts / sum(posts) OVER () AS share,
       {_MEAN_SENTIMENT} AS mean_sentiment, {_NEGATIVE_SHARE} AS negative_share
FROM {{db}}.posts_by_minute
WHERE {_RANGE}
GROUP BY topic, secondary_topic
ORDER BY posts DESC, topic, secondary_topic""",
        ("topic", "secondary_topic", "posts", "share", "mean_sentiment", "negative_share"),
        "table",
    ),
    View(
        "open_alerts",
        "Open alerts",
        f"""
SELECT id, watch, key, severity, state, opened_at, updated_at, observed, baseline, negative_share, score, top_terms
FROM ({_CURRENT_ALERTS}
)
WHERE state != 'resolved'
ORDER BY multiIf(severity = 'critical', 0, severity = 'warning', 1, 2), updated_at DESC""",
        ("id", "watch", "key", "severity", "state", "opened_at", "updated_at", "observed", "baseline",
         "negative_share", "score", "top_terms"),
        "table",
    ),  # fmt: skip
    View(
        "recent_alerts",
        "Alert transitions",
        """
SELECT updated_at, watch, key, severity, state, observed, baseline, negative_share, score, id
FROM {db}.alerts FINAL
WHERE updated_at >= {start:DateTime64(3, 'UTC')} AND updated_at < {end:DateTime64(3, 'UTC')}
ORDER BY updated_at DESC
LIMIT 200""",
        ("updated_at", "watch", "key", "severity", "state", "observed", "baseline", "negative_share", "score", "id"),
        "table",
    ),
    View(
        "top_negative_posts",
        "Most negative posts",
        """
SELECT created_at, source, account, topic, countries, sentiment_score,
       if(title != '', title, substring(text, 1, 200)) AS headline, url, pageviews, id
FROM {db}.posts FINAL
WHERE created_at >= {start:DateTime64(3, 'UTC')} AND created_at < {end:DateTime64(3, 'UTC')}
  AND sentiment_label = 'negative'
ORDER BY sentiment_score ASC, ifNull(pageviews, 0) DESC, created_at DESC
LIMIT 50""",
        ("created_at", "source", "account", "topic", "countries", "sentiment_score", "headline", "url", "pageviews",
         "id"),
        "table",
    ),  # fmt: skip
    View(
        "pipeline_health",
        "Pipeline throughput and model path",
        f"""
SELECT {_BUCKET} AS t,
       sum(rows) * 60 / greatest({{bucket:UInt32}}, 60) AS posts_per_min,
       sumIf(rows, model_path = 'learned') / sum(rows) AS learned_share,
       sumIf(rows, model_path = 'transformer') / sum(rows) AS transformer_share,
       sumIf(rows, model_path = 'lexical') / sum(rows) AS lexical_share,
       sumIf(rows, model_path = 'empty') / sum(rows) AS empty_share,
       sum(lag_ms_sum) / sum(rows) / 1000 AS mean_lag_s
FROM {{db}}.processing_by_minute
WHERE {_RANGE}
GROUP BY t
ORDER BY t""",
        ("t", "posts_per_min", "learned_share", "transformer_share", "lexical_share", "empty_share", "mean_lag_s"),
    ),
    View(
        "watch_detail",
        "Watch detail",
        """
SELECT window_end, key, state, severity, observed, baseline, negative_share, baseline_negative_share, score,
       top_terms, id
FROM {db}.alerts FINAL
WHERE watch = {watch:String}
  AND window_end >= {start:DateTime64(3, 'UTC')} AND window_start < {end:DateTime64(3, 'UTC')}
ORDER BY window_end DESC, key
LIMIT 500""",
        ("window_end", "key", "state", "severity", "observed", "baseline", "negative_share", "baseline_negative_share",
         "score", "top_terms", "id"),
        "table",
    ),  # fmt: skip
)

VIEWS: dict[str, View] = {view.name: view for view in _VIEWS}


def render_sql(view: View, db: str) -> str:
    """The view's SQL for database `db` (plain replace: the SQL also holds `{name:Type}` parameters)."""
    return view.sql.replace("{db}", db)


def run_view(query: Query, db: str, name: str, **params) -> list[dict]:
    """Run view `name` through `query(sql, params)` (e.g. `ClickHouseSink.query`); rows as column dicts.

    Raises KeyError for an unknown view and ValueError when parameters are missing or unexpected,
    so a typo fails loudly instead of reaching ClickHouse as an unbound placeholder.
    """
    return run(VIEWS[name], query, db, **params)


def run(view: View, query: Query, db: str, **params) -> list[dict]:
    """Run `view` (of this module or another's, e.g. `pipeline.analytics.attitude`); see `run_view`."""
    given = set(params)
    if given != view.parameters:
        raise ValueError(
            f"view {view.name!r} takes parameters {sorted(view.parameters)}, got {sorted(given)}"
        )
    rows = query(render_sql(view, db), params)
    return [dict(zip(view.columns, row, strict=True)) for row in rows]
