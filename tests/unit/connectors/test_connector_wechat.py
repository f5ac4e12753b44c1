"""WeChat official-account article list adapter against recorded ``appmsg`` list responses."""

from __future__ import annotations

import pytest
from aiohttp import web

from pipeline.backoff import Backoff
from pipeline.connectors.http import FatalSourceError, RetryPolicy
from pipeline.connectors.wechat import WechatConnector, article_to_fields
from tests.unit.connectors.recorded_api import collect, json_reply, recorded_bytes, recorded_json

LISTING = recorded_json("wechat", "appmsg_list.json")
ARTICLES = LISTING["app_msg_list"]


def list_handler(articles: list[dict]):
    """Offset paging like the real list: ``begin``/``count``, newest first, ``is_last`` on the final page."""

    async def handle(request: web.Request) -> web.Response:
        begin, count = int(request.query["begin"]), int(request.query["count"])
        page = articles[begin : begin + count]
        body = dict(LISTING, app_msg_list=page, app_msg_cnt=len(articles), total_count=len(articles))
        return json_reply(body | {"is_last": begin + count >= len(articles)})

    return handle


def connector(settings, api) -> WechatConnector:
    wechat = WechatConnector(
        settings,
        fakeid="MzA5NjE2MjAxMg==",
        account="俄罗斯驻华大使馆",
        token="t",
        base_url=api.base_url,
        count=2,
        once=True,
        requests_per_s=None,
    )
    wechat.api.retry = RetryPolicy(max_attempts=4, backoff=Backoff(base_s=0.01, cap_s=0.02))
    return wechat


def test_read_and_looking_at_counters_become_pageviews_and_looking_at():
    article = next(a for a in ARTICLES if a["appmsgid"] == 2650901030)
    fields = article_to_fields(article, "俄罗斯驻华大使馆")
    assert fields["id"] == "2650901030_1"
    assert fields["metrics"] == {"pageviews": 100245, "looking_at": 98, "likes": 332}
    assert fields["created_at"] == "2018-11-05T00:00:00+00:00"
    assert (fields["title"], fields["text"]) == ("关于美国违反或废除重大国际条约的历史", article["digest"])


async def test_poll_walks_every_page_and_emits_oldest_first(recorded_api, settings):
    api = await recorded_api({"/cgi-bin/appmsg": list_handler(ARTICLES)})
    emits = await collect(connector(settings, api).stream(None))
    assert [e.post.id for e in emits] == [
        "2650901001_1",
        "2650901001_2",
        "2650901015_1",
        "2650901030_1",
        "2650901044_1",
        "2650901058_1",
        "2650901072_1",
    ]
    assert [r.query["begin"] for r in api.requests] == ["0", "2", "4", "6"]
    assert emits[1].position == {"since": 1541030400, "seen": ["2650901001_1", "2650901001_2"]}
    assert emits[0].post.metrics.pageviews == 52431 and emits[0].post.account == "俄罗斯驻华大使馆"


async def test_resume_stops_paging_at_the_watermark_and_skips_seen_articles_of_the_same_push(recorded_api, settings):
    api = await recorded_api({"/cgi-bin/appmsg": list_handler(ARTICLES)})
    emits = await collect(connector(settings, api).stream({"since": 1541721600, "seen": ["2650901058_1"]}))
    assert [e.post.id for e in emits] == ["2650901072_1"]
    assert len(api.requests) == 2  # page 2 holds an article older than the watermark: no page 3
    again = await collect(connector(settings, api).stream({"since": 1541030400, "seen": ["2650901001_1"]}))
    assert [e.post.id for e in again][0] == "2650901001_2"


async def test_frequency_control_is_retried_and_an_invalid_session_is_fatal(recorded_api, settings):
    freq = lambda: json_reply(recorded_bytes("wechat", "freq_control.json"))  # noqa: E731 - HTTP 200 + ret=200013
    api = await recorded_api({"/cgi-bin/appmsg": list_handler(ARTICLES)}, failures=[freq, freq])
    assert len(await collect(connector(settings, api).stream(None))) == len(ARTICLES)

    api = await recorded_api(
        {"/cgi-bin/appmsg": list_handler(ARTICLES)},
        failures=[lambda: json_reply(recorded_bytes("wechat", "invalid_session.json"))],
    )
    with pytest.raises(FatalSourceError, match="ret=200003.*refresh the token"):
        await collect(connector(settings, api).stream(None))
