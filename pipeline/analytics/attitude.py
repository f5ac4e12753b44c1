"""The attitude of foreign publics toward China (paper 003: "对华情绪与行为"), from ClickHouse.

Which posts: those that mention China or a Chinese actor, i.e. whose `countries` holds ``CN`` —
the gazetteer's CN entry (zh/en/ru names and aliases, the zh pair abbreviations such as 中美 and
中俄, and Chinese actors such as 习近平, 解放军, Xinhua, CCP; `models/gazetteer.yaml`).

Who speaks: a post's *public* is its language and, where `models/publics.yaml` knows the account
or outlet, its country (``en/US``; ``en/unknown`` otherwise). Chinese official accounts (by
account, or by a phrase of the author's name: 中国驻…大使馆, "Chinese Embassy", "Посольство КНР")
are the public ``chinese_official``, and accounts the registry places in CN are audience
``chinese_domestic``: neither is part of a foreign public.

Per public and day: posts, share negative, share positive, net score (share positive minus share
negative, in [-1, 1]). Every chart is one query over ``posts FINAL`` joined with the newest sync
of `account_registry` (migration 031); Python never sees a post.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field

from pipeline.analytics.views import View, run
from pipeline.settings import PROJECT_ROOT

Query = Callable[[str, dict], list[tuple]]
REGISTRY_PATH = PROJECT_ROOT / "models" / "publics.yaml"
REGISTRY_COLUMNS = ("source", "account", "author_pattern", "country", "chinese_official", "synced_at")
CHINESE_OFFICIAL = "chinese_official"

_NEWEST_SYNC = "synced_at = (SELECT max(synced_at) FROM {db}.account_registry)"

CHINA_POSTS = f"""
    SELECT p.created_at AS created_at, p.sentiment_label AS sentiment_label,
           multiIf(r.chinese_official
                     OR multiSearchAnyCaseInsensitiveUTF8(p.author, (
                          SELECT groupArray(author_pattern) FROM {{db}}.account_registry
                          WHERE author_pattern != '' AND {_NEWEST_SYNC})),
                   '{CHINESE_OFFICIAL}',
                   r.country = 'CN', 'chinese_domestic',
                   'foreign') AS audience,
           if(audience = '{CHINESE_OFFICIAL}', audience,
              concat(p.lang, '/', if(r.country = '', 'unknown', r.country))) AS public
    FROM {{db}}.posts AS p FINAL
    LEFT JOIN (
        SELECT source, account, any(country) AS country, max(chinese_official) AS chinese_official
        FROM {{db}}.account_registry
        WHERE account != '' AND {_NEWEST_SYNC}
        GROUP BY source, account
    ) AS r ON p.source = r.source AND p.account = r.account
    WHERE has(p.countries, 'CN')
      AND p.created_at >= {{start:DateTime64(3, 'UTC')}} AND p.created_at < {{end:DateTime64(3, 'UTC')}}"""
"""Posts mentioning China in [start, end), each with its audience and public (one row per post)."""

_SHARES = """count() AS posts,
       countIf(sentiment_label = 'negative') / posts AS negative_share,
       countIf(sentiment_label = 'positive') / posts AS positive_share,
       positive_share - negative_share AS net_score"""

DAILY = View(
    "china_attitude",
    "Attitude toward China by public (net score = share positive - share negative)",
    f"""
SELECT toStartOfDay(created_at) AS t, public, {_SHARES}
FROM ({CHINA_POSTS}
)
GROUP BY t, public
ORDER BY t, public""",
    ("t", "public", "posts", "negative_share", "positive_share", "net_score"),
)

SUMMARY = View(
    "china_attitude_summary",
    "Attitude toward China: trend and forecast by public",
    f"""
SELECT public, any(audience) AS audience, sum(day_posts) AS posts,
       sum(day_negative) / posts AS negative_share, sum(day_positive) / posts AS positive_share,
       positive_share - negative_share AS net_score,
       if(count() >= 2, tupleElement(simpleLinearRegression(toFloat64(toRelativeDayNum(t)), day_net), 'k'), NULL)
           AS net_score_trend_per_day,
       if(max(f.has_forecast) = 1, any(f.forecast_net_7d), NULL) AS forecast_net_score_7d,
       if(max(f.has_forecast) = 1, any(f.forecast_lower_80), NULL) AS forecast_lower_80,
       if(max(f.has_forecast) = 1, any(f.forecast_upper_80), NULL) AS forecast_upper_80
FROM (
    SELECT toStartOfDay(created_at) AS t, public, any(audience) AS audience, count() AS day_posts,
           countIf(sentiment_label = 'negative') AS day_negative, countIf(sentiment_label = 'positive') AS day_positive,
           (day_positive - day_negative) / day_posts AS day_net
    FROM ({CHINA_POSTS}
    )
    GROUP BY t, public
) AS d
LEFT JOIN (
    SELECT substring(key, length('attitude:') + 1) AS public, 1 AS has_forecast,
           avgIf(forecast, step < 7) AS forecast_net_7d,
           avgIf(lower_80, step < 7) AS forecast_lower_80, avgIf(upper_80, step < 7) AS forecast_upper_80
    FROM {{db}}.forecasts FINAL
    WHERE watch = '' AND startsWith(key, 'attitude:') AND metric = 'net_score' AND resolution = 'day'
      AND (key, origin) IN (
          SELECT key, max(origin) FROM {{db}}.forecasts
          WHERE watch = '' AND startsWith(key, 'attitude:') AND metric = 'net_score' AND resolution = 'day'
          GROUP BY key)
    GROUP BY public
) AS f ON d.public = f.public
GROUP BY public
ORDER BY audience = 'foreign' DESC, posts DESC, public""",
    ("public", "audience", "posts", "negative_share", "positive_share", "net_score", "net_score_trend_per_day",
     "forecast_net_score_7d", "forecast_lower_80", "forecast_upper_80"),
    "table",
)  # fmt: skip
"""Per public over [start, end): the index, its trend (least-squares slope of the daily net score,
per day) and the mean of the newest forecast of the next 7 days' net score with its 80 % band."""

VIEWS = {view.name: view for view in (DAILY, SUMMARY)}


def attitude_daily(query: Query, db: str, start: datetime, end: datetime) -> list[dict]:
    """Dashboard data: one row per day and public (see `DAILY`)."""
    return run(DAILY, query, db, start=start, end=end)


def attitude_summary(query: Query, db: str, start: datetime, end: datetime) -> list[dict]:
    """Dashboard data: one row per public with trend and forecast (see `SUMMARY`)."""
    return run(SUMMARY, query, db, start=start, end=end)


# --- the registry of who speaks --------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AccountRef(_Strict):
    source: Annotated[str, Field(min_length=1)]
    account: Annotated[str, Field(min_length=1)]


class KnownAccount(AccountRef):
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]


class ChineseOfficial(_Strict):
    accounts: list[AccountRef] = []
    author_patterns: list[Annotated[str, Field(min_length=2)]] = Field(default=[], max_length=255)
    """At most 255: ClickHouse's multiSearch functions take that many needles."""


class Registry(_Strict):
    chinese_official: ChineseOfficial = ChineseOfficial()
    accounts: list[KnownAccount] = []

    @classmethod
    def load(cls, path: Path = REGISTRY_PATH) -> "Registry":
        return cls.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})

    def rows(self, synced_at: datetime) -> list[tuple]:
        official = self.chinese_official
        return [
            *((a.source, a.account, "", "", True, synced_at) for a in official.accounts),
            *(("", "", pattern, "", True, synced_at) for pattern in official.author_patterns),
            *((a.source, a.account, "", a.country, False, synced_at) for a in self.accounts),
        ]


def sync_registry(insert_rows: Callable[[str, tuple[str, ...], list[tuple]], int], registry: Registry) -> int:
    """Write the registry as the newest sync (readers ignore older ones)."""
    return insert_rows("account_registry", REGISTRY_COLUMNS, registry.rows(datetime.now(timezone.utc)))


# --- series for the forecasts ----------------------------------------------------------------------

ATTITUDE_SERIES_SQL = f"""
SELECT toStartOfDay(created_at) AS period, public, count(),
       countIf(sentiment_label = 'negative'), countIf(sentiment_label = 'positive')
FROM ({CHINA_POSTS}
)
GROUP BY period, public"""


def daily_counts(query: Query, db: str, start: datetime, end: datetime) -> list[tuple]:
    """(day, public, posts, negative, positive) rows for the forecasts of each public's index."""
    return query(ATTITUDE_SERIES_SQL.replace("{db}", db), {"start": start, "end": end})


def net_score(posts: np.ndarray, negative: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Net score per period; a period without posts carries the last known score (0 before any)."""
    out = np.empty(len(posts))
    last = 0.0
    for i, (n, neg, pos) in enumerate(zip(posts, negative, positive)):
        last = out[i] = (pos - neg) / n if n else last
    return out
