"""X API v2: recent search (polled, ``since_id`` checkpoint) and the filtered stream (NDJSON) -> RawPost.

Both ask for ``tweet.fields=created_at,lang,public_metrics,author_id`` with ``expansions=author_id``
so the author's handle comes from ``includes.users``. Rate limits are 429s whose
``x-rate-limit-reset`` (epoch seconds) the HTTP client waits for.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import orjson

from pipeline.connectors.base import Connector, Emit, PollingConnector
from pipeline.connectors.http import ApiClient
from pipeline.connectors.validation import post_from_item
from pipeline.schemas import RawPost
from pipeline.settings import Settings

log = logging.getLogger(__name__)

SEARCH_PATH = "/2/tweets/search/recent"
STREAM_PATH = "/2/tweets/search/stream"
TWEET_PARAMS = {
    "tweet.fields": "created_at,lang,public_metrics,author_id",
    "expansions": "author_id",
    "user.fields": "username,name",
}


def users_by_id(includes: dict | None) -> dict[str, dict]:
    return {user["id"]: user for user in (includes or {}).get("users", [])}


def tweet_to_fields(tweet: dict, users: dict[str, dict]) -> dict:
    """Retweets and quotes both count as reposts; impressions (when the tier exposes them) as pageviews."""
    username = users.get(tweet.get("author_id"), {}).get("username")
    counts = tweet.get("public_metrics") or {}
    reposts = None
    if "retweet_count" in counts or "quote_count" in counts:
        reposts = counts.get("retweet_count", 0) + counts.get("quote_count", 0)
    return {
        "id": tweet["id"],
        "source": "x",
        "account": username,
        "author": username,
        "text": tweet["text"],
        "created_at": tweet["created_at"],
        "lang": tweet.get("lang"),
        "url": f"https://x.com/{username or 'i/web'}/status/{tweet['id']}",
        "metrics": {
            "likes": counts.get("like_count"),
            "reposts": reposts,
            "comments": counts.get("reply_count"),
            "pageviews": counts.get("impression_count"),
        },
    }


def _bearer(token: str | None) -> dict[str, str]:
    token = token or os.environ.get("X_BEARER_TOKEN")
    if not token:
        raise ValueError("X connector needs bearer_token= or X_BEARER_TOKEN")
    return {"Authorization": f"Bearer {token}"}


class XSearchConnector(PollingConnector):
    """Polls recent search; each poll follows ``meta.next_token`` down to the checkpoint's ``since_id``."""

    kind = "x-search"

    def __init__(
        self,
        settings: Settings,
        *,
        query: str,
        bearer_token: str | None = None,
        base_url: str = "https://api.x.com",
        max_results: int = 100,
        max_pages: int = 50,
        requests_per_s: float | None = 0.2,
        **options: Any,
    ) -> None:
        self.query = query
        self.max_results = max_results
        self.max_pages = max_pages
        options.setdefault("name", "x-search")
        api = ApiClient(options["name"], base_url, headers=_bearer(bearer_token), requests_per_s=requests_per_s)
        super().__init__(settings, api=api, **options)

    async def poll(self, position: Any) -> AsyncIterator[Emit]:
        since_id = position["since_id"] if position else None
        tweets: dict[int, tuple[dict, dict[str, dict]]] = {}
        next_token = None
        for _ in range(self.max_pages):
            params = {
                "query": self.query,
                "max_results": self.max_results,
                "since_id": since_id,
                "next_token": next_token,
            }
            body = await self.api.get_json(SEARCH_PATH, params=params | TWEET_PARAMS)
            users = users_by_id(body.get("includes"))
            for tweet in body.get("data") or []:
                tweets[int(tweet["id"])] = (tweet, users)
            next_token = (body.get("meta") or {}).get("next_token")
            if not next_token:
                break
        for tid in sorted(tweets):
            tweet, users = tweets[tid]
            parsed = post_from_item(tweet, partial(tweet_to_fields, users=users), self.settings)
            original = orjson.dumps(tweet)
            yield Emit.of(
                parsed, original, origin=self.api.url(SEARCH_PATH), offset=tid, position={"since_id": str(tid)}
            )


class XStreamConnector(Connector):
    """Filtered stream: one JSON object per line, blank keep-alive lines, reconnect with backoff on drop.

    The stream cannot be rewound on standard tiers, so the checkpoint only records the last id
    seen (for operators). ``max_connections`` (None = forever) bounds how often it (re)connects.
    """

    kind = "x-stream"

    def __init__(
        self,
        settings: Settings,
        *,
        bearer_token: str | None = None,
        base_url: str = "https://api.x.com",
        max_connections: int | None = None,
        **options: Any,
    ) -> None:
        options.setdefault("name", "x-stream")
        super().__init__(settings, **options)
        self.api = ApiClient(self.name, base_url, headers=_bearer(bearer_token), timeout_s=30.0)
        self.max_connections = max_connections

    async def stream(self, position: Any) -> AsyncIterator[Emit]:
        origin = self.api.url(STREAM_PATH)
        connections = quiet_drops = 0
        async with self.api:
            while self.max_connections is None or connections < self.max_connections:
                if connections:
                    await asyncio.sleep(self.api.retry.backoff.delay(quiet_drops))
                connections += 1
                received = False
                async for line in self.api.stream_lines(STREAM_PATH, params=TWEET_PARAMS):
                    received = True
                    if line.strip():  # blank lines are keep-alives
                        yield self._emit(line.strip(), origin)
                quiet_drops = 0 if received else quiet_drops + 1  # back off harder only while nothing arrives

    def _emit(self, line: bytes, origin: str) -> Emit:
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError:
            message = None
        if isinstance(message, dict) and "errors" in message and "data" not in message:
            log.warning("x stream notice: %s", message["errors"])  # e.g. operational-disconnect; a drop follows
            return Emit()
        users = users_by_id(message.get("includes")) if isinstance(message, dict) else {}
        parsed = post_from_item(message, lambda m: tweet_to_fields(m["data"], users), self.settings)
        if isinstance(parsed, RawPost):
            return Emit(post=parsed, position={"last_id": parsed.id})
        return Emit.of(parsed, line, origin=origin, offset=-1, position=None)
