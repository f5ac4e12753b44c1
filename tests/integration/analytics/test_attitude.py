"""The attitude-toward-China index on hand-built posts: every number, each public, the officials apart."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from pipeline.analytics.attitude import AccountRef, ChineseOfficial, KnownAccount, Registry, attitude_daily, \
    attitude_summary, sync_registry
from pipeline.forecasting.service import FORECAST_COLUMNS
from tests.integration.analytics.analytics_samples import DB, make_post

pytestmark = pytest.mark.integration

DAY1, DAY2 = datetime(2015, 3, 2, tzinfo=timezone.utc), datetime(2015, 3, 3, tzinfo=timezone.utc)
RANGE = {"start": DAY1, "end": DAY1 + timedelta(days=7)}
REGISTRY = Registry(
    chinese_official=ChineseOfficial(accounts=[AccountRef(source="x", account="MFA_China")], author_patterns=["中国驻"]),
    accounts=[KnownAccount(source="x", account="us_desk", country="US"),
              KnownAccount(source="rss", account="vestnik", country="RU"),
              KnownAccount(source="weibo", account="beijing_user", country="CN")],
)  # fmt: skip


def post(post_id, day, label, *, source="x", account="us_desk", author=None, lang="en", countries=("CN",)):
    score = {"negative": -0.7, "neutral": 0.0, "positive": 0.6}[label]
    return make_post(post_id, day + timedelta(hours=9), source=source, account=account, author=author, lang=lang,
                     countries=list(countries), sentiment_label=label, sentiment_score=score)  # fmt: skip


POSTS = [
    # day 1 - en/US: 2 negative, 1 positive, 1 neutral
    post("us1", DAY1, "negative"), post("us2", DAY1, "negative"), post("us3", DAY1, "positive"), post("us4", DAY1, "neutral"),
    post("us5", DAY1, "negative", countries=("US",)),  # does not mention China
    post("anon", DAY1, "positive", account="someone"),  # en/unknown
    post("ru1", DAY1, "negative", source="rss", account="vestnik", lang="ru"),  # ru/RU
    post("mfa", DAY1, "positive", account="MFA_China"),  # Chinese official by account
    post("emb", DAY1, "positive", source="weibo", account="12345", author="中国驻俄罗斯大使馆", lang="zh"),  # by name
    post("cn1", DAY1, "negative", source="weibo", account="beijing_user", lang="zh"),  # domestic
    # day 2 - en/US: 2 positive, 1 neutral
    post("us6", DAY2, "positive"), post("us7", DAY2, "positive"), post("us8", DAY2, "neutral"),
]  # fmt: skip


@pytest.fixture
def filled(sink):
    sync_registry(sink.insert_rows, Registry())  # an older sync that the newest one supersedes
    sync_registry(sink.insert_rows, REGISTRY)
    sink.insert_posts(POSTS)
    sink.insert_posts(POSTS[:2])  # a redelivery counts once
    return sink


def test_daily_index_per_public(filled):
    rows = {(r["t"].date().isoformat(), r["public"]): r for r in attitude_daily(filled.query, DB, **RANGE)}
    assert set(rows) == {("2015-03-02", "en/US"), ("2015-03-02", "en/unknown"), ("2015-03-02", "ru/RU"),
                         ("2015-03-02", "chinese_official"), ("2015-03-02", "zh/CN"), ("2015-03-03", "en/US")}  # fmt: skip
    us1 = rows[("2015-03-02", "en/US")]
    assert (us1["posts"], us1["negative_share"], us1["positive_share"], us1["net_score"]) == (4, 0.5, 0.25, -0.25)
    us2 = rows[("2015-03-03", "en/US")]
    assert (us2["posts"], us2["negative_share"], us2["positive_share"]) == (3, 0.0, pytest.approx(2 / 3))
    assert rows[("2015-03-02", "chinese_official")]["posts"] == 2  # the ministry's account and the embassy by name
    assert rows[("2015-03-02", "ru/RU")]["net_score"] == -1.0
    assert rows[("2015-03-02", "en/unknown")]["net_score"] == 1.0


def test_summary_with_trend_and_audiences(filled):
    rows = {r["public"]: r for r in attitude_summary(filled.query, DB, **RANGE)}
    us = rows["en/US"]
    assert (us["audience"], us["posts"]) == ("foreign", 7)
    assert us["negative_share"] == pytest.approx(2 / 7) and us["positive_share"] == pytest.approx(3 / 7)
    assert us["net_score"] == pytest.approx(1 / 7)
    assert us["net_score_trend_per_day"] == pytest.approx(2 / 3 - (-0.25))  # -0.25 on day 1, +2/3 on day 2
    assert rows["ru/RU"]["net_score_trend_per_day"] is None  # one day: no trend
    assert (rows["chinese_official"]["audience"], rows["zh/CN"]["audience"]) == ("chinese_official", "chinese_domestic")
    assert list(rows)[:3] == ["en/US", "en/unknown", "ru/RU"]  # foreign publics first
    assert us["forecast_net_score_7d"] is None


def test_summary_reads_the_newest_forecast_of_each_public(filled):
    fitted = datetime.now(timezone.utc)  # retention counts from the fit

    def rows(origin, value):
        return [("", "attitude:en/US", "net_score", "day", origin + timedelta(days=step), origin, step, value,
                 value - 0.1, value + 0.1, value - 0.2, value + 0.2, "m", fitted) for step in range(14)]  # fmt: skip

    filled.insert_rows("forecasts", FORECAST_COLUMNS, rows(DAY2, 0.9) + rows(DAY2 + timedelta(days=1), 0.3))
    us = {r["public"]: r for r in attitude_summary(filled.query, DB, **RANGE)}["en/US"]
    assert us["forecast_net_score_7d"] == pytest.approx(0.3)
    assert (us["forecast_lower_80"], us["forecast_upper_80"]) == (pytest.approx(0.2), pytest.approx(0.4))


def test_the_account_report_carries_the_index_of_its_period(filled):
    from pipeline.analytics.report import build_report, render

    report = build_report(filled.query, DB, "us_desk", RANGE["start"], RANGE["end"])
    assert report.articles == 8  # the account's own posts
    assert [a.public for a in report.china_attitude] == [r["public"] for r in attitude_summary(filled.query, DB, **RANGE)]
    us = report.china_attitude[0]
    assert (us.public, us.posts, us.net_score) == ("en/US", 7, pytest.approx(1 / 7))
    text = render(report, "text")
    assert "Attitude toward China by public" in text and "en/US" in text and "+0.143" in text
    csv_rows = [line for line in render(report, "csv").splitlines() if line.startswith("china_attitude,")]
    assert len(csv_rows) == len(report.china_attitude)
