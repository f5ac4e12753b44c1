"""Every pull source against the real broker: CSV, RSS, WeChat, X search and stream land on posts.raw.

The HTTP sources talk to a local server replaying recorded responses in each API's real format
(the handlers of the unit tests); what is checked here is what reaches the broker.
"""

from __future__ import annotations

import csv

import pytest

from pipeline.connectors.files import CsvFileConnector
from pipeline.connectors.rss import RssConnector
from pipeline.connectors.x import XStreamConnector
from pipeline.schemas import RawPost, decode
from pipeline.settings import Topics
from pipeline.topics import ensure_topics
from tests.integration.kafka_io import read_topic
from tests.unit.connectors.recorded_api import recorded_bytes
from tests.unit.connectors.test_connector_rss import ETAG, feed_handler
from tests.unit.connectors.test_connector_wechat import ARTICLES, list_handler
from tests.unit.connectors.test_connector_wechat import connector as wechat_connector
from tests.unit.connectors.test_connector_x import SEARCH, search, search_handler, stream_handler

pytestmark = pytest.mark.integration


async def landed(settings, connector) -> list[RawPost]:
    """Run the connector to its end; the posts on posts.raw, checked for key and CreateTime."""
    stats = await connector.run()
    records = await read_topic(settings, Topics.RAW, expected=stats.posts)
    assert len(records) == stats.posts > 0
    posts = [decode(r.value, RawPost) for r in records]
    for record, post in zip(records, posts):
        assert record.key == post.key
        assert record.timestamp == int(post.created_at.timestamp() * 1000)
    return posts


async def test_csv_rows_with_metrics_and_multiline_text(make_settings, tmp_path):
    settings = make_settings()
    await ensure_topics(settings)
    path = tmp_path / "export.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "source", "account", "created_at", "text", "pageviews", "looking_at"])
        for i in range(12):
            text = f"俄罗斯新年集市 第{i}天\nsecond line" if i == 3 else f"article {i}"
            writer.writerow([f"a{i}", "wechat", "russian_embassy_cn", f"2018-12-{i + 1:02d}T10:00:00+08:00", text, 100 * i, i])
    posts = await landed(settings, CsvFileConnector(settings, path=path))
    by_id = {p.id: p for p in posts}
    assert len(by_id) == 12
    assert by_id["a3"].text == "俄罗斯新年集市 第3天\nsecond line"
    assert (by_id["a5"].metrics.pageviews, by_id["a5"].metrics.looking_at) == (500, 5)


async def test_rss_feed_items_then_nothing_new_on_an_unchanged_feed(make_settings, recorded_api):
    settings = make_settings()
    await ensure_topics(settings)
    api = await recorded_api({"/en/rss/": feed_handler({"etag": ETAG, "body": recorded_bytes("rss", "feed.xml")})})

    def rss() -> RssConnector:
        return RssConnector(settings, feeds=[api.base_url + "/en/rss/"], once=True, requests_per_s=None)

    posts = await landed(settings, rss())
    assert {p.source for p in posts} == {"rss"} and len(posts) == 3
    assert (await rss().run()).posts == 0
    assert api.requests[-1].headers["If-None-Match"] == ETAG


async def test_wechat_articles_carry_pageviews_and_looking_at(make_settings, recorded_api):
    settings = make_settings()
    await ensure_topics(settings)
    api = await recorded_api({"/cgi-bin/appmsg": list_handler(ARTICLES)})
    posts = await landed(settings, wechat_connector(settings, api))
    assert len(posts) == len(ARTICLES)
    assert all(p.metrics.pageviews is not None and p.metrics.looking_at is not None for p in posts)


async def test_x_search_pages_through_results(make_settings, recorded_api):
    settings = make_settings()
    await ensure_topics(settings)
    api = await recorded_api({"/2/tweets/search/recent": search_handler(SEARCH["data"])})
    posts = await landed(settings, search(settings, api))
    assert {p.id for p in posts} == {t["id"] for t in SEARCH["data"]}


async def test_x_filtered_stream(make_settings, recorded_api):
    settings = make_settings()
    await ensure_topics(settings)
    api = await recorded_api({"/2/tweets/search/stream": stream_handler(recorded_bytes("x", "filtered_stream.ndjson"))})
    stream = XStreamConnector(settings, bearer_token="bt", base_url=api.base_url, max_connections=1)
    posts = await landed(settings, stream)
    assert [p.id for p in posts] == ["1853481234567890001", "1853490000000000002", "1853512345678900003"]
