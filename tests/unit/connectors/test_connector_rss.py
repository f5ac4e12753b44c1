"""RSS/Atom: feedparser mapping, conditional GET with ETag/Last-Modified, seen-guid bookkeeping."""

from __future__ import annotations

from datetime import datetime, timezone

from aiohttp import web

from pipeline.connectors.rss import RssConnector
from tests.unit.connectors.recorded_api import collect, recorded_bytes

ETAG = '"5f3c-18a2"'
MODIFIED = "Mon, 04 Nov 2024 16:40:00 GMT"


def feed_handler(feed: dict):
    """Serves feed["body"]; answers 304 when the client's validators match the current ones."""

    async def handle(request: web.Request) -> web.Response:
        if request.headers.get("If-None-Match") == feed["etag"]:
            return web.Response(status=304, headers={"ETag": feed["etag"]})
        headers = {"ETag": feed["etag"], "Last-Modified": MODIFIED}
        return web.Response(body=feed["body"], headers=headers, content_type="application/rss+xml")

    return handle


def rss(settings, api, path: str = "/en/rss/") -> RssConnector:
    return RssConnector(settings, feeds=[api.base_url + path], once=True, requests_per_s=None)


async def test_rss_items_map_to_posts_oldest_first(recorded_api, settings):
    api = await recorded_api({"/en/rss/": feed_handler({"etag": ETAG, "body": recorded_bytes("rss", "feed.xml")})})
    emits = await collect(rss(settings, api).stream(None))
    posts = [e.post for e in emits]
    assert [p.id for p in posts] == ["news-2024-11-01-treaties", "news-2024-11-03-visa", "news-2024-11-04-msu-bit"]
    msu = posts[-1]
    assert msu.created_at == datetime(2024, 11, 4, 1, 0, tzinfo=timezone.utc)  # +0800 normalised to UTC
    assert (msu.source, msu.account, msu.author, msu.lang) == (
        "rss",
        "Embassy of the Russian Federation in China — News",
        "Press Office",
        "en",
    )
    assert msu.url == "https://russia.org.cn/en/news/ambassador-visits-shenzhen-msu-bit/"
    assert "met students" in msu.text and msu.title == "Ambassador visits Shenzhen MSU-BIT University"


async def test_validators_are_saved_only_with_the_last_new_item(recorded_api, settings):
    api = await recorded_api({"/en/rss/": feed_handler({"etag": ETAG, "body": recorded_bytes("rss", "feed.xml")})})
    url = api.base_url + "/en/rss/"
    emits = await collect(rss(settings, api).stream(None))
    assert emits[0].position["feeds"][url]["etag"] is None  # a crash here must not turn the next GET into a 304
    assert emits[-1].position["feeds"][url] == {
        "etag": ETAG,
        "modified": MODIFIED,
        "seen": ["news-2024-11-01-treaties", "news-2024-11-03-visa", "news-2024-11-04-msu-bit"],
    }


async def test_unchanged_feed_is_a_304_and_a_changed_one_yields_only_new_items(recorded_api, settings):
    feed = {"etag": ETAG, "body": recorded_bytes("rss", "feed.xml")}
    api = await recorded_api({"/en/rss/": feed_handler(feed)})
    connector = rss(settings, api)
    first = await collect(connector.stream(None))
    assert await collect(connector.stream(first[-1].position)) == []
    assert api.requests[-1].headers["If-None-Match"] == ETAG
    assert api.requests[-1].headers["If-Modified-Since"] == MODIFIED

    new_item = (
        b"<item><title>New</title><link>https://russia.org.cn/en/news/new/</link>"
        b'<guid isPermaLink="false">news-2024-11-05-new</guid><pubDate>Tue, 05 Nov 2024 09:00:00 GMT</pubDate>'
        b"<description>Fresh.</description></item>"
    )
    feed.update(etag='"5f3c-18a3"', body=feed["body"].replace(b"<item>", new_item + b"<item>", 1))
    third = await collect(connector.stream(first[-1].position))
    assert [e.post.id for e in third] == ["news-2024-11-05-new"]
    assert third[-1].position["feeds"][api.base_url + "/en/rss/"]["etag"] == '"5f3c-18a3"'


async def test_atom_entries_use_published_time_content_and_feed_language(recorded_api, settings):
    feed = {"etag": '"a1"', "body": recorded_bytes("rss", "atom.xml")}
    api = await recorded_api({"/cn/atom/": feed_handler(feed)})
    posts = [e.post for e in await collect(rss(settings, api, "/cn/atom/").stream(None))]
    assert [p.id for p in posts] == ["tag:russia.org.cn,2024:/cn/news/1188", "tag:russia.org.cn,2024:/cn/news/1201"]
    assert posts[1].created_at == datetime(2024, 11, 4, 23, 30, tzinfo=timezone.utc)
    assert posts[1].text == "<p>活动包括展览、音乐会和电影周。</p>" and posts[1].author == "新闻处"
    assert posts[0].created_at == datetime(2024, 11, 2, 3, 0, tzinfo=timezone.utc)  # no <published>: <updated>
    assert posts[0].lang == "zh"


async def test_seen_ids_are_bounded(recorded_api, settings):
    api = await recorded_api({"/en/rss/": feed_handler({"etag": ETAG, "body": recorded_bytes("rss", "feed.xml")})})
    connector = RssConnector(settings, feeds=api.base_url + "/en/rss/", once=True, seen_capacity=2, requests_per_s=None)
    emits = await collect(connector.stream(None))
    assert emits[-1].position["feeds"][api.base_url + "/en/rss/"]["seen"] == [
        "news-2024-11-03-visa",
        "news-2024-11-04-msu-bit",
    ]
