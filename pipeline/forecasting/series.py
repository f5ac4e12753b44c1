"""The series a refit forecasts, read from ClickHouse in one aggregate query per family.

Every series is a count of posts per period and the count of negative ones, on a gap-free grid
that ends at the refit's origin (the start of the newest, still incomplete, period):
- ``topic:<topic>`` and ``country:<code>`` over all posts, from the per-minute aggregates
  (`posts_by_minute`, `posts_by_country_minute`, migration 003);
- every watch's keys (``all``, ``topic:<topic>``, ``country:<code>``), from `posts` with the
  watch's match rule written as a ClickHouse condition (`watch_condition`): a keyword watch
  needs the text, which no aggregate keeps. Posts are counted by identity (``uniqExact(source,
  id)``), so a redelivered post counts once, as in the aggregates;
- the attitude of each public toward China (`pipeline.analytics.attitude`), daily.

The grid starts at the first period holding any post (before it there was no pipeline, not
silence) and is at most `HISTORY_PERIODS` long.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np

from pipeline.alerting.watches import Keywords, Watch
from pipeline.forecasting.model import Resolution

Query = Callable[[str, dict], list[tuple]]

HISTORY_PERIODS = {"hour": 35 * 24, "day": 182}
MIN_POSTS = {"hour": 48, "day": 28}
"""A series with fewer posts over its whole history is not forecast (a stray country mention);
`min_posts` overrides it where a caller wants every series (observed values for a chart)."""

_PERIOD_START = {"hour": "toStartOfHour", "day": "toStartOfDay"}
_NOT_WORD = r"[^\p{L}\p{N}]"  # Python's str.isalnum(), which the watches' matcher uses for word boundaries
_RE2_SPECIAL = re.compile(r"([\\.^$|?*+()\[\]{}])")


@dataclass(frozen=True)
class Counts:
    """Posts and negative posts per period, for the periods [start, origin)."""

    start: datetime
    posts: np.ndarray
    negative: np.ndarray

    def negative_share(self) -> np.ndarray:
        """Share per period; a period without posts carries the last known share (0 before any)."""
        share = np.empty(len(self.posts))
        last = 0.0
        for i, (n, neg) in enumerate(zip(self.posts, self.negative)):
            last = share[i] = neg / n if n else last
        return share


SeriesId = tuple[str, str]
"""(watch, key): watch '' is all posts."""


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def data_span(query: Query, db: str) -> tuple[datetime, datetime] | None:
    """(first, newest) minute holding a post, from the per-minute aggregate; None when empty."""
    rows = query(f"SELECT min(minute), max(minute) FROM {db}.posts_by_minute HAVING count() > 0", {})
    return (utc(rows[0][0]), utc(rows[0][1])) if rows else None


def period_floor(moment: datetime, resolution: Resolution) -> datetime:
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % resolution.seconds, tz=timezone.utc)


def grid_start(first: datetime, origin: datetime, resolution: Resolution) -> datetime:
    earliest = origin - timedelta(seconds=resolution.seconds * HISTORY_PERIODS[resolution.name])
    return max(period_floor(first, resolution), earliest)


def _gridded(
    rows: Sequence[tuple], start: datetime, origin: datetime, resolution: Resolution, min_posts: int | None = None
) -> dict[SeriesId, Counts]:
    """rows of (period, watch, key, posts, negative) -> Counts per series with zeros where nothing was posted."""
    size = int((origin - start).total_seconds() // resolution.seconds)
    posts: dict[SeriesId, np.ndarray] = {}
    negative: dict[SeriesId, np.ndarray] = {}
    for period, watch, key, n, neg in rows:
        index = int((utc(period) - start).total_seconds() // resolution.seconds)
        if not 0 <= index < size:
            continue
        series = (watch, key)
        if series not in posts:
            posts[series], negative[series] = np.zeros(size), np.zeros(size)
        posts[series][index] += n
        negative[series][index] += neg
    return {
        series: Counts(start, posts[series], negative[series])
        for series in sorted(posts)
        if posts[series].sum() >= (MIN_POSTS[resolution.name] if min_posts is None else min_posts)
    }


def _range_params(start: datetime, origin: datetime) -> dict:
    return {"start": start, "origin": origin}


def overall_counts(
    query: Query, db: str, resolution: Resolution, start: datetime, origin: datetime, min_posts: int | None = None
) -> dict[SeriesId, Counts]:
    """``topic:<topic>`` and ``country:<code>`` over all posts."""
    period = _PERIOD_START[resolution.name]
    sql = f"""
SELECT {period}(minute) AS period, '' AS watch, concat('topic:', topic) AS key,
       uniqExactMerge(post_ids), uniqExactMergeIf(post_ids, sentiment_label = 'negative')
FROM {db}.posts_by_minute
WHERE minute >= {{start:DateTime('UTC')}} AND minute < {{origin:DateTime('UTC')}}
GROUP BY period, key
UNION ALL
SELECT {period}(minute) AS period, '' AS watch, concat('country:', country) AS key,
       uniqExactMerge(post_ids), uniqExactMergeIf(post_ids, sentiment_label = 'negative')
FROM {db}.posts_by_country_minute
WHERE minute >= {{start:DateTime('UTC')}} AND minute < {{origin:DateTime('UTC')}}
GROUP BY period, key"""
    return _gridded(query(sql, _range_params(start, origin)), start, origin, resolution, min_posts)


def watch_counts(
    query: Query, db: str, watches: Sequence[Watch], resolution: Resolution, start: datetime, origin: datetime,
    min_posts: int | None = None,
) -> dict[SeriesId, Counts]:
    """Every key of every watch, one query per watch over `posts` in the range."""
    period = _PERIOD_START[resolution.name]
    out: dict[SeriesId, Counts] = {}
    for watch in watches:
        condition, params = watch_condition(watch)
        sql = f"""
SELECT {period}(created_at) AS period, {{watch:String}} AS watch, arrayJoin({watch_keys_sql(watch)}) AS key,
       uniqExact(source, id), uniqExactIf(source, id, sentiment_label = 'negative')
FROM {db}.posts
WHERE created_at >= {{start:DateTime('UTC')}} AND created_at < {{origin:DateTime('UTC')}} AND {condition}
GROUP BY period, key"""
        rows = query(sql, {**params, **_range_params(start, origin), "watch": watch.name})
        out |= _gridded(rows, start, origin, resolution, min_posts)
    return out


# --- a watch's match rule as a ClickHouse condition -----------------------------------------------


def _re2_literal(text: str) -> str:
    return _RE2_SPECIAL.sub(r"\\\1", text)


def keyword_sql(keywords: Keywords, text: str, params: dict, name: str) -> str:
    """The condition `KeywordMatcher.search` computes in Python: zh keywords as substrings, en/ru
    as whole words (a trailing ``*`` is a prefix), on lower-cased text. `params` receives the
    values under names starting with `name`."""
    parts = []
    substrings = sorted({word.lower() for word in keywords.zh})
    if substrings:
        params[f"{name}_zh"] = substrings
        parts.append(f"multiSearchAny({text}, {{{name}_zh:Array(String)}})")
    words, prefixes = set(), set()
    for word in [*keywords.en, *keywords.ru]:
        needle = word.rstrip("*").strip().lower()
        if needle and needle not in substrings:
            (prefixes if word.endswith("*") else words).add(_re2_literal(needle))
    alternatives = []
    if words:
        alternatives.append(f"(?:{'|'.join(sorted(words))})(?:{_NOT_WORD}|$)")
    if prefixes:
        alternatives.append(f"(?:{'|'.join(sorted(prefixes))})")
    if alternatives:
        params[f"{name}_words"] = f"(?:^|{_NOT_WORD})(?:{'|'.join(alternatives)})"
        parts.append(f"match({text}, {{{name}_words:String}})")
    return "(" + " OR ".join(parts) + ")" if parts else "false"


def watch_condition(watch: Watch) -> tuple[str, dict]:
    """`Watch.matches` as a condition on `posts` rows, with its query parameters."""
    spec = watch.config.match
    text = "lowerUTF8(if(text_norm != '', text_norm, text))"
    countries = "arrayMap(c -> upper(c), countries)"
    params: dict = {}
    terms = []
    if spec.langs:
        params["langs"] = list(spec.langs)
        terms.append("has({langs:Array(String)}, lang)")
    if spec.topics:
        params["topics"] = list(spec.topics)
        terms.append("has({topics:Array(String)}, topic)")
    if spec.secondary_topics:
        params["secondary_topics"] = list(spec.secondary_topics)
        terms.append("has({secondary_topics:Array(String)}, secondary_topic)")
    if spec.countries:
        params["countries"] = [c.upper() for c in spec.countries]
        terms.append(f"hasAny({countries}, {{countries:Array(String)}})")
    if not spec.keywords.is_empty():
        terms.append(keyword_sql(spec.keywords, text, params, "keywords"))
    if spec.context is not None:
        params["context_countries"] = [c.upper() for c in spec.context.countries]
        context_text = keyword_sql(spec.context.keywords, text, params, "context")
        terms.append(f"(hasAny({countries}, {{context_countries:Array(String)}}) OR {context_text})")
    if not spec.exclude.is_empty():
        terms.append(f"NOT {keyword_sql(spec.exclude, text, params, 'exclude')}")
    return " AND ".join(terms) if terms else "true", params


def watch_keys_sql(watch: Watch) -> str:
    """`Watch.keys_for` as an array expression: the window keys a post counts under."""
    parts = []
    for kind in watch.rules.keys:
        if kind == "all":
            parts.append("['all']")
        elif kind == "topic":
            parts.append("[concat('topic:', topic)]")
        else:
            parts.append("arrayMap(c -> concat('country:', c), arraySort(arrayDistinct(arrayMap(c -> upper(c), countries))))")
    return f"arrayConcat({', '.join(parts)})"
