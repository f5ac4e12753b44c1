"""X API v2 adapters: recent search paging/since_id, rate-limit waits, 401, and the NDJSON filtered stream."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web

from pipeline.backoff import Backoff
from pipeline.connectors.http import FatalSourceError, RetryPolicy
from pipeline.connectors.x import XSearchConnector, XStreamConnector, tweet_to_fields, users_by_id
from tests.unit.connectors.recorded_api import collect, json_reply, recorded_bytes, recorded_json

SEARCH = recorded_json("x", "search_recent.json")
FAST = RetryPolicy(max_attempts=4, backoff=Backoff(base_s=0.01, cap_s=0.02))


def search_handler(tweets: list[dict]):
    """Newest first, ``since_id`` exclusive, ``next_token`` = opaque cursor, empty result = only ``meta``."""

    async def handle(request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == "Bearer bt"
        since_id = int(request.query.get("since_id", 0))
        start = int(request.query.get("next_token", "0").removeprefix("b26v89c19zqg8o3f"))
        size = int(request.query["max_results"])
        matching = [t for t in tweets if int(t["id"]) > since_id]
        page = matching[start : start + size]
        if not page:
            return json_reply(recorded_bytes("x", "search_recent_empty.json"))
        meta = {"newest_id": page[0]["id"], "oldest_id": page[-1]["id"], "result_count": len(page)}
        if start + size < len(matching):
            meta["next_token"] = f"b26v89c19zqg8o3f{start + size}"
        return json_reply({"data": page, "includes": SEARCH["includes"], "meta": meta})

    return handle


def search(settings, api) -> XSearchConnector:
    x = XSearchConnector(
        settings,
        query="from:RusEmbChina",
        bearer_token="bt",
        base_url=api.base_url,
        max_results=2,
        once=True,
        requests_per_s=None,
    )
    x.api.retry = FAST
    return x


def test_tweet_maps_author_handle_and_public_metrics():
    users = users_by_id(SEARCH["includes"])
    tweet = next(t for t in SEARCH["data"] if t["id"] == "1853598765432100004")
    fields = tweet_to_fields(tweet, users)
    assert (fields["author"], fields["lang"], fields["created_at"]) == ("mfa_russia", "en", "2024-11-04T15:47:30.000Z")
    assert fields["url"] == "https://x.com/mfa_russia/status/1853598765432100004"
    assert fields["metrics"] == {"likes": 1502, "reposts": 340 + 97, "comments": 210, "pageviews": 250771}


async def test_search_follows_next_token_then_polls_with_since_id(recorded_api, settings):
    tweets = list(SEARCH["data"])
    api = await recorded_api({"/2/tweets/search/recent": search_handler(tweets)})
    x = search(settings, api)
    first = await collect(x.stream(None))
    assert [e.post.id for e in first] == sorted(t["id"] for t in SEARCH["data"])
    assert [r.query.get("next_token") for r in api.requests] == [None, "b26v89c19zqg8o3f2", "b26v89c19zqg8o3f4"]
    assert api.requests[0].query["tweet.fields"] == "created_at,lang,public_metrics,author_id"
    newer = dict(SEARCH["data"][0], id="1853700000000000006", text="New statement.")
    tweets.insert(0, newer)
    second = await collect(x.stream(first[-1].position))
    assert [e.post.id for e in second] == ["1853700000000000006"]
    assert api.requests[-1].query["since_id"] == "1853612345000000005"


async def test_429_waits_until_x_rate_limit_reset(recorded_api, settings):
    def limited() -> web.Response:
        reset = str(int(time.time()) + 2)  # whole seconds: +2 is at least 1 s away
        headers = {"x-rate-limit-limit": "450", "x-rate-limit-remaining": "0", "x-rate-limit-reset": reset}
        return json_reply(recorded_bytes("x", "too_many_requests.json"), status=429, headers=headers)

    api = await recorded_api({"/2/tweets/search/recent": search_handler(SEARCH["data"])}, failures=[limited])
    started = time.monotonic()
    emits = await collect(search(settings, api).stream(None))
    assert len(emits) == len(SEARCH["data"])
    assert (
        time.monotonic() - started >= 0.2
    )  # waited for the reset instead of hammering (full backoff would be < 0.02 s)


async def test_429_with_retry_after_is_honoured(recorded_api, settings):
    limited = lambda: web.Response(status=429, headers={"Retry-After": "1"})  # noqa: E731
    api = await recorded_api({"/2/tweets/search/recent": search_handler(SEARCH["data"])}, failures=[limited])
    started = time.monotonic()
    await collect(search(settings, api).stream(None))
    assert time.monotonic() - started >= 0.9


async def test_401_is_fatal_and_says_to_check_the_token(recorded_api, settings):
    api = await recorded_api(
        {"/2/tweets/search/recent": search_handler(SEARCH["data"])},
        failures=[lambda: json_reply(recorded_bytes("x", "unauthorized.json"), status=401)],
    )
    with pytest.raises(FatalSourceError, match=r"HTTP 401 \(check the access token / bearer token\)"):
        await collect(search(settings, api).stream(None))
    assert len(api.requests) == 1


def stream_handler(body: bytes):
    async def handle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json; charset=utf-8"})
        await response.prepare(request)
        for line in body.splitlines(keepends=True):
            await response.write(line)
            await asyncio.sleep(0.001)
        return response  # then the server drops the connection, as after operational-disconnect

    return handle


async def test_filtered_stream_reads_ndjson_skips_keepalives_and_reconnects(recorded_api, settings):
    body = recorded_bytes("x", "filtered_stream.ndjson")
    api = await recorded_api(
        {"/2/tweets/search/stream": stream_handler(body)},
        failures=[lambda: web.Response(status=503)],
    )
    x = XStreamConnector(settings, bearer_token="bt", base_url=api.base_url, max_connections=2)
    x.api.retry = FAST
    emits = await collect(x.stream(None))
    posts = [e.post for e in emits if e.post]
    assert [p.id for p in posts] == ["1853481234567890001", "1853490000000000002", "1853512345678900003"] * 2
    assert posts[1].author == "mfa_russia" and posts[1].lang == "ru"
    assert emits[2].position == {"last_id": "1853512345678900003"}
    assert len(api.requests) == 3  # 503, then two connections (the stream ended once and was reopened)


async def test_filtered_stream_dead_letters_an_unreadable_line(recorded_api, settings):
    api = await recorded_api({"/2/tweets/search/stream": stream_handler(b'{"data": {"id": "1"}}\r\nnot json\r\n')})
    x = XStreamConnector(settings, bearer_token="bt", base_url=api.base_url, max_connections=1)
    emits = await collect(x.stream(None))
    assert [e.dead_letter.original for e in emits] == [b'{"data": {"id": "1"}}', b"not json"]
