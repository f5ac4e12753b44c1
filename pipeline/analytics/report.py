"""Account analytics after the WeChat-diplomacy study (seed paper 004, Tables 1-3, Figures 1-2).

For one account and period: the distribution of first- and second-level issues (Table 1), the top
articles by pageviews and by engagement (Tables 2-3), articles per month (Figure 1), the
correlation of pageviews with engagement (Figure 2), and the attitude toward China of each public
over the same period (`pipeline.analytics.attitude`: what the account's audiences say about China).

Figures come from ``posts FINAL``: one row per article with its latest counters, so they are exact
under redelivery and re-crawls. *Engagement* is the "looking at" count when the source reports it,
else likes: WeChat renamed its "like" button to "looking at" (WeChat 7.0), and a connector stores
whichever the page shows.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Literal

import orjson
from scipy import stats

from pipeline.analytics.attitude import attitude_summary

Query = Callable[[str, dict], list[tuple]]
Format = Literal["text", "csv", "json"]

_ARTICLES_SQL = """
SELECT id, created_at, title, url, topic, secondary_topic, pageviews, ifNull(looking_at, likes) AS engagement
FROM {db}.posts FINAL
WHERE account = {account:String}
  AND (empty({source:String}) OR source = {source:String})
  AND created_at >= {start:DateTime64(3, 'UTC')} AND created_at < {end:DateTime64(3, 'UTC')}
ORDER BY created_at, id"""

MIN_CORRELATION_N = 3


@dataclass(frozen=True)
class IssueCount:
    """One line of Table 1; `secondary_topic` is None on a first-level line. Share of all articles."""

    topic: str
    secondary_topic: str | None
    articles: int
    share: float


@dataclass(frozen=True)
class RankedArticle:
    rank: int
    id: str
    created_at: datetime
    title: str
    url: str
    topic: str
    pageviews: int | None
    engagement: int | None


@dataclass(frozen=True)
class MonthCount:
    month: str  # YYYY-MM
    articles: int


@dataclass(frozen=True)
class MetricSummary:
    """Totals of one counter over the articles that report it (`n`), as the paper quotes them."""

    n: int
    total: int
    mean: float | None
    maximum: int | None
    above_mean: int
    above_mean_share: float | None


@dataclass(frozen=True)
class Correlation:
    """Pageviews vs engagement over the `n` articles reporting both; None when n < 3 or constant."""

    n: int
    pearson_r: float | None
    pearson_p: float | None
    spearman_r: float | None
    spearman_p: float | None


@dataclass(frozen=True)
class PublicAttitude:
    """One public's attitude toward China over the period (`pipeline.analytics.attitude.SUMMARY`)."""

    public: str
    audience: str
    posts: int
    negative_share: float
    positive_share: float
    net_score: float
    net_score_trend_per_day: float | None
    forecast_net_score_7d: float | None


@dataclass(frozen=True)
class AccountReport:
    account: str
    source: str | None
    start: datetime
    end: datetime
    articles: int
    first_level: tuple[IssueCount, ...]
    second_level: tuple[IssueCount, ...]
    top_by_pageviews: tuple[RankedArticle, ...]
    top_by_engagement: tuple[RankedArticle, ...]
    per_month: tuple[MonthCount, ...]
    pageviews: MetricSummary
    engagement: MetricSummary
    correlation: Correlation
    china_attitude: tuple[PublicAttitude, ...]


@dataclass(frozen=True)
class _Article:
    id: str
    created_at: datetime
    title: str
    url: str
    topic: str
    secondary_topic: str
    pageviews: int | None
    engagement: int | None


def _article(row: tuple) -> _Article:
    article = _Article(*row)
    if article.created_at.tzinfo is None:  # ClickHouse returns UTC wall time without tzinfo
        return replace(article, created_at=article.created_at.replace(tzinfo=timezone.utc))
    return article


REPORT_CONTENT_TYPES = {"text": "text/plain", "csv": "text/csv", "json": "application/json"}


def parse_instant(text: str) -> datetime:
    """An ISO date or date-time from a command line or URL; naive means UTC."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def build_report(
    query: Query,
    db: str,
    account: str,
    start: datetime,
    end: datetime,
    *,
    top_n: int = 5,
    source: str | None = None,
) -> AccountReport:
    """The report of `account`'s articles created in [start, end) (aware datetimes), via `query(sql, params)`."""
    params = {"account": account, "source": source or "", "start": start, "end": end}
    articles = [_article(row) for row in query(_ARTICLES_SQL.replace("{db}", db), params)]
    first_level, second_level = _issue_distribution(articles)
    return AccountReport(
        account=account,
        source=source,
        start=start,
        end=end,
        articles=len(articles),
        first_level=first_level,
        second_level=second_level,
        top_by_pageviews=_top(articles, "pageviews", "engagement", top_n),
        top_by_engagement=_top(articles, "engagement", "pageviews", top_n),
        per_month=_per_month(articles, start, end),
        pageviews=_summary(a.pageviews for a in articles),
        engagement=_summary(a.engagement for a in articles),
        correlation=_correlation(articles),
        china_attitude=_china_attitude(query, db, start, end),
    )


def _china_attitude(query: Query, db: str, start: datetime, end: datetime) -> tuple[PublicAttitude, ...]:
    fields = PublicAttitude.__dataclass_fields__
    return tuple(
        PublicAttitude(**{name: value for name, value in row.items() if name in fields})
        for row in attitude_summary(query, db, start, end)
    )


def _issue_distribution(articles: list[_Article]) -> tuple[tuple[IssueCount, ...], tuple[IssueCount, ...]]:
    """Table 1: first-level issues by frequency, each followed in `second_level` by its sub-issues."""
    total = len(articles)
    first = Counter(a.topic for a in articles)
    second = Counter((a.topic, a.secondary_topic) for a in articles)
    by_frequency = sorted(first, key=lambda topic: (-first[topic], topic))
    first_level = tuple(IssueCount(topic, None, first[topic], first[topic] / total) for topic in by_frequency)
    second_level = tuple(
        IssueCount(topic, sub, count, count / total)
        for topic in by_frequency
        for (parent, sub), count in sorted(second.items(), key=lambda item: (-item[1], item[0][1]))
        if parent == topic
    )
    return first_level, second_level


def _top(articles: list[_Article], metric: str, tie_break: str, n: int) -> tuple[RankedArticle, ...]:
    """Tables 2-3: the n articles with the highest `metric` (ties: higher `tie_break`, then earlier)."""
    ranked = sorted(
        (a for a in articles if getattr(a, metric) is not None),
        key=lambda a: (-getattr(a, metric), -(getattr(a, tie_break) or 0), a.created_at, a.id),
    )
    return tuple(
        RankedArticle(rank, a.id, a.created_at, a.title, a.url, a.topic, a.pageviews, a.engagement)
        for rank, a in enumerate(ranked[:n], start=1)
    )


def _months(start: datetime, end: datetime) -> list[str]:
    last = end - timedelta(microseconds=1)
    year, month, months = start.year, start.month, []
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _per_month(articles: list[_Article], start: datetime, end: datetime) -> tuple[MonthCount, ...]:
    """Figure 1: articles per calendar month (UTC) of the period, months without articles included."""
    counts = Counter(a.created_at.strftime("%Y-%m") for a in articles)
    utc_start, utc_end = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
    return tuple(MonthCount(month, counts[month]) for month in _months(utc_start, utc_end))


def _summary(values: Iterable[int | None]) -> MetricSummary:
    present = [v for v in values if v is not None]
    if not present:
        return MetricSummary(0, 0, None, None, 0, None)
    mean = sum(present) / len(present)
    above = sum(1 for v in present if v > mean)
    return MetricSummary(len(present), sum(present), mean, max(present), above, above / len(present))


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _correlation(articles: list[_Article]) -> Correlation:
    """Figure 2: Pearson and Spearman (average ranks for ties) of pageviews vs engagement."""
    pairs = [(a.pageviews, a.engagement) for a in articles if a.pageviews is not None and a.engagement is not None]
    n = len(pairs)
    xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
    if n < MIN_CORRELATION_N or len(set(xs)) == 1 or len(set(ys)) == 1:
        return Correlation(n, None, None, None, None)
    pearson = stats.pearsonr(xs, ys)
    spearman = stats.spearmanr(xs, ys)
    return Correlation(
        n, _finite(pearson.statistic), _finite(pearson.pvalue), _finite(spearman.statistic), _finite(spearman.pvalue)
    )


# --- rendering -------------------------------------------------------------------------------------


def render(report: AccountReport, fmt: Format) -> str:
    """The report as human-readable text, one CSV table (a `section` column per part) or JSON."""
    renderers = {"text": _render_text, "csv": _render_csv, "json": _render_json}
    if fmt not in renderers:
        raise ValueError(f"unknown format {fmt!r}; expected one of {sorted(renderers)}")
    return renderers[fmt](report)


def _render_json(report: AccountReport) -> str:
    return orjson.dumps(asdict(report), option=orjson.OPT_INDENT_2).decode() + "\n"


CSV_COLUMNS = (
    "section", "rank", "month", "topic", "secondary_topic", "id", "date", "title", "url", "articles", "share",
    "pageviews", "engagement", "n", "total", "mean", "maximum", "above_mean", "above_mean_share",
    "pearson_r", "pearson_p", "spearman_r", "spearman_p",
    "public", "audience", "posts", "negative_share", "positive_share", "net_score", "net_score_trend_per_day",
    "forecast_net_score_7d",
)  # fmt: skip


def _csv_rows(report: AccountReport) -> Iterable[dict]:
    for issue in report.first_level:
        yield {"section": "first_level_issue", **asdict(issue)}
    for issue in report.second_level:
        yield {"section": "second_level_issue", **asdict(issue)}
    tops = (("top_by_pageviews", report.top_by_pageviews), ("top_by_engagement", report.top_by_engagement))
    for section, articles in tops:
        for article in articles:
            row = asdict(article)
            row["date"] = row.pop("created_at").date().isoformat()
            yield {"section": section, **row}
    for month in report.per_month:
        yield {"section": "articles_per_month", **asdict(month)}
    for section, summary in (("pageviews_summary", report.pageviews), ("engagement_summary", report.engagement)):
        yield {"section": section, **asdict(summary)}
    yield {"section": "correlation_pageviews_engagement", **asdict(report.correlation)}
    for attitude in report.china_attitude:
        yield {"section": "china_attitude", **asdict(attitude)}


def _render_csv(report: AccountReport) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in _csv_rows(report):
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
    return buffer.getvalue()


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.1f}%"


def _num(value: float | int | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.{digits}f}"


def _table(header: tuple[str, ...], rows: list[tuple]) -> list[str]:
    cells = [tuple(str(c) for c in header)] + [tuple(str(c) for c in row) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]


def _render_text(report: AccountReport) -> str:
    source = f" ({report.source})" if report.source else ""
    lines = [
        f"Account report: {report.account}{source}",
        f"Period: {report.start.isoformat()} to {report.end.isoformat()} - {report.articles} articles",
        "",
        "Issues (Table 1)",
    ]
    issue_rows = []
    for first in report.first_level:  # laid out like Table 1: sub-issues beside their issue
        subs = [(s.secondary_topic, s.articles, _pct(s.share)) for s in report.second_level if s.topic == first.topic]
        parents = [(first.topic, first.articles, _pct(first.share))] + [("", "", "")] * (len(subs) - 1)
        issue_rows += [parent + sub for parent, sub in zip(parents, subs)]
    lines += _table(("First-level issue", "Articles", "Share", "Second-level issue", "Articles", "Share"), issue_rows)
    for title, articles in (
        ("Top articles by pageviews (Table 2)", report.top_by_pageviews),
        ("Top articles by likes / \"looking at\" (Table 3)", report.top_by_engagement),
    ):
        lines += ["", title]
        lines += _table(
            ("Rank", "Date", "Title", "Pageviews", "Engagement"),
            [
                (a.rank, a.created_at.date().isoformat(), a.title, _num(a.pageviews), _num(a.engagement))
                for a in articles
            ],
        )
    lines += ["", "Articles per month (Figure 1)"]
    lines += _table(("Month", "Articles"), [(m.month, m.articles) for m in report.per_month])
    lines += ["", "Counters"]
    lines += _table(
        ("Counter", "Articles", "Total", "Mean", "Max", "Above mean", "Share above"),
        [
            (name, s.n, s.total, _num(s.mean), _num(s.maximum), s.above_mean, _pct(s.above_mean_share))
            for name, s in (("pageviews", report.pageviews), ("likes / looking at", report.engagement))
        ],
    )
    c = report.correlation
    lines += [
        "",
        "Pageviews vs likes / \"looking at\" (Figure 2)",
        f"n = {c.n}, Pearson r = {_num(c.pearson_r, 3)} (p = {_num(c.pearson_p, 4)}), "
        f"Spearman rho = {_num(c.spearman_r, 3)} (p = {_num(c.spearman_p, 4)})",
        "",
        "Attitude toward China by public (posts mentioning China; net = positive - negative share)",
    ]
    lines += _table(
        ("Public", "Audience", "Posts", "Negative", "Positive", "Net", "Trend/day", "Forecast 7 d"),
        [
            (a.public, a.audience, a.posts, _pct(a.negative_share), _pct(a.positive_share), _signed(a.net_score),
             _signed(a.net_score_trend_per_day), _signed(a.forecast_net_score_7d))
            for a in report.china_attitude
        ],
    )  # fmt: skip
    return "\n".join(lines) + "\n"


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f}"

