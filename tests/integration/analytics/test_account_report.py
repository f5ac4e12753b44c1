"""The account report (paper 004, Tables 1-3, Figures 1-2) over a small history with known figures."""

from __future__ import annotations

import msgspec

import csv
import io
import json
import math
import re
from datetime import datetime, timedelta, timezone

import pytest
from pipeline.analytics.report import build_report, render
from tests.integration.analytics.analytics_samples import DB, make_post

pytestmark = pytest.mark.integration

START, END = datetime(2018, 1, 1, tzinfo=timezone.utc), datetime(2019, 1, 1, tzinfo=timezone.utc)

# id, created (2018), topic, secondary topic, pageviews, "looking at" (a8 reports likes instead, a9 nothing)
ARTICLES = [
    ("a1", (1, 5), "political_affairs", "external_relations", 5457, 144),
    ("a2", (1, 20), "political_affairs", "conference_activities", 3599, 66),
    ("a3", (2, 15), "cultural_exchanges", "tourism", 559, 60),
    ("a4", (4, 2), "political_affairs", "external_relations", 1616, 57),
    ("a5", (4, 24), "cultural_exchanges", "history", 1358, 50),
    ("a6", (8, 17), "political_affairs", "external_relations", 1501, 30),
    ("a7", (12, 11), "economic_trade", "economic_cooperation", 1381, 35),
    ("a8", (12, 19), "other", "holiday_notice", 200, None),
    ("a9", (12, 30), "cultural_exchanges", "tourism", None, None),
]


def _history():
    posts = []
    for post_id, (month, day), topic, sub, pageviews, looking_at in ARTICLES:
        extra = {"likes": 5} if post_id == "a8" else {}
        posts.append(make_post(post_id, datetime(2018, month, day, 9, tzinfo=timezone.utc), topic=topic,
                               secondary_topic=sub, pageviews=pageviews, looking_at=looking_at, **extra))  # fmt: skip
    created = datetime(2018, 4, 2, 9, tzinfo=timezone.utc)
    early_crawl = make_post("a4", created, pageviews=900, looking_at=20, processed_at=created + timedelta(hours=1))
    recrawl = msgspec.structs.replace([p for p in posts if p.id == "a4"][0], processed_at=created + timedelta(days=30))
    noise = [
        make_post("b1", datetime(2018, 3, 1, tzinfo=timezone.utc), account="other", pageviews=99999, looking_at=999),
        make_post("c1", datetime(2019, 1, 1, tzinfo=timezone.utc), pageviews=99999, looking_at=999),
    ]
    # the first crawl of a4, every article, a redelivered batch, then a4 re-crawled with newer counters
    return [[early_crawl], [p for p in posts if p.id != "a4"] + noise, posts[:3], [recrawl]]


@pytest.fixture
def report(sink):
    for batch in _history():
        sink.insert_posts(batch)
    return build_report(sink.query, DB, "embassy", START, END, top_n=3)


def test_issue_distribution_matches_table_1(report):
    assert report.articles == 9
    assert [(i.topic, i.articles, i.share) for i in report.first_level] == [
        ("political_affairs", 4, 4 / 9),
        ("cultural_exchanges", 3, 3 / 9),
        ("economic_trade", 1, 1 / 9),
        ("other", 1, 1 / 9),
    ]
    assert [(i.topic, i.secondary_topic, i.articles) for i in report.second_level] == [
        ("political_affairs", "external_relations", 3),
        ("political_affairs", "conference_activities", 1),
        ("cultural_exchanges", "tourism", 2),
        ("cultural_exchanges", "history", 1),
        ("economic_trade", "economic_cooperation", 1),
        ("other", "holiday_notice", 1),
    ]
    assert math.isclose(sum(i.share for i in report.second_level), 1.0)


def test_top_articles_match_tables_2_and_3_with_latest_counters(report):
    assert [(a.rank, a.id, a.pageviews, a.engagement) for a in report.top_by_pageviews] == [
        (1, "a1", 5457, 144), (2, "a2", 3599, 66), (3, "a4", 1616, 57),
    ]  # fmt: skip
    top_engagement = [(a.rank, a.id, a.engagement) for a in report.top_by_engagement]
    assert top_engagement == [(1, "a1", 144), (2, "a2", 66), (3, "a3", 60)]
    assert report.top_by_pageviews[0].created_at == datetime(2018, 1, 5, 9, tzinfo=timezone.utc)


def test_articles_per_month_match_figure_1(report):
    assert [(m.month, m.articles) for m in report.per_month] == [
        ("2018-01", 2), ("2018-02", 1), ("2018-03", 0), ("2018-04", 2), ("2018-05", 0), ("2018-06", 0),
        ("2018-07", 0), ("2018-08", 1), ("2018-09", 0), ("2018-10", 0), ("2018-11", 0), ("2018-12", 3),
    ]  # fmt: skip


def test_counter_summaries(report):
    pv = report.pageviews
    assert (pv.n, pv.total, pv.maximum, pv.above_mean, pv.above_mean_share) == (8, 15671, 5457, 2, 0.25)
    assert pv.mean == 15671 / 8
    eng = report.engagement  # looking_at, or likes (5) for a8
    assert (eng.n, eng.total, eng.mean, eng.above_mean) == (8, 447, 447 / 8, 4)


def test_correlation_matches_figure_2_by_hand(report):
    pairs = [(a[4], a[5]) for a in ARTICLES if a[4] is not None and a[5] is not None] + [(200, 5)]
    n = len(pairs)
    mx, my = sum(x for x, _ in pairs) / n, sum(y for _, y in pairs) / n
    cov = sum((x - mx) * (y - my) for x, y in pairs)
    pearson = cov / math.sqrt(sum((x - mx) ** 2 for x, _ in pairs) * sum((y - my) ** 2 for _, y in pairs))
    # ranks of pageviews / engagement per article give d^2 = 28 -> rho = 1 - 6*28 / (8*63)
    spearman = 1 - 6 * 28 / (8 * (8**2 - 1))
    c = report.correlation
    assert c.n == 8
    assert c.pearson_r == pytest.approx(pearson, abs=1e-12)
    assert c.spearman_r == pytest.approx(spearman, abs=1e-12) and c.spearman_r == pytest.approx(2 / 3)
    assert 0 < c.pearson_p < 0.05


def test_renderings_carry_the_same_figures(report):
    rows = list(csv.DictReader(io.StringIO(render(report, "csv"))))
    first = [r for r in rows if r["section"] == "first_level_issue"]
    assert [(r["topic"], int(r["articles"])) for r in first] == [(i.topic, i.articles) for i in report.first_level]
    months = {r["month"]: int(r["articles"]) for r in rows if r["section"] == "articles_per_month"}
    assert months["2018-12"] == 3 and len(months) == 12
    (corr,) = [r for r in rows if r["section"] == "correlation_pageviews_engagement"]
    assert float(corr["spearman_r"]) == pytest.approx(2 / 3)

    data = json.loads(render(report, "json"))
    assert data["top_by_engagement"][2]["id"] == "a3"
    assert data["top_by_pageviews"][0]["created_at"] == "2018-01-05T09:00:00+00:00"
    assert data["pageviews"]["total"] == 15671

    text = render(report, "text")
    assert re.search(r"^political_affairs +4 +44\.4% +external_relations +3 +33\.3%$", text, re.M)
    assert "Spearman rho = 0.667" in text
    with pytest.raises(ValueError):
        render(report, "xml")


def test_account_without_articles(sink):
    report = build_report(sink.query, DB, "nobody", START, END)
    assert report.articles == 0 and report.first_level == () and report.top_by_pageviews == ()
    assert report.correlation.n == 0 and report.correlation.pearson_r is None
    assert sum(m.articles for m in report.per_month) == 0 and len(report.per_month) == 12
    assert "0 articles" in render(report, "text")
