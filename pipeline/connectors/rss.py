"""RSS/Atom feeds (parsed by feedparser) -> RawPost (source ``rss``), polled with conditional GETs.

Per feed the checkpoint keeps the ETag / Last-Modified validators and the last `seen_capacity`
entry ids. Validators are saved only with the last new entry of a fetch: saving them earlier
would let a crash turn the next fetch into a 304 and lose the unsent entries.
"""

from __future__ import annotations

import calendar
import hashlib
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

import feedparser
import orjson

from pipeline.connectors.base import Emit, PollingConnector
from pipeline.connectors.http import ApiClient
from pipeline.connectors.validation import post_from_item
from pipeline.settings import Settings

MAX_ID_CHARS = 256


def entry_id(entry: dict) -> str:
    """guid/id, else link, else a hash of title + date; over-long ids are hashed to fit RawPost.id."""
    ident = entry.get("id") or entry.get("link")
    if not ident:
        basis = f"{entry.get('title', '')}|{entry.get('published', entry.get('updated', ''))}"
        ident = "sha1:" + hashlib.sha1(basis.encode()).hexdigest()
    return ident if len(ident) <= MAX_ID_CHARS else "sha1:" + hashlib.sha1(ident.encode()).hexdigest()


def entry_time(entry: dict, fetched_at: datetime) -> datetime:
    """published, else updated (feedparser normalises both to UTC struct_time), else when we fetched it."""
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    return datetime.fromtimestamp(calendar.timegm(parsed), timezone.utc) if parsed else fetched_at


def entry_to_fields(entry: dict, feed: dict, fetched_at: datetime) -> dict:
    content = entry.get("content")
    text = content[0].get("value") if content else entry.get("summary", "")
    return {
        "id": entry_id(entry),
        "source": "rss",
        "account": feed.get("title"),
        "author": entry.get("author"),
        "title": entry.get("title"),
        "text": text or "",
        "created_at": entry_time(entry, fetched_at).isoformat(),
        "lang": entry.get("language") or feed.get("language"),
        "url": entry.get("link"),
    }


def conditional_headers(state: dict) -> dict[str, str]:
    headers = {}
    if state.get("etag"):
        headers["If-None-Match"] = state["etag"]
    if state.get("modified"):
        headers["If-Modified-Since"] = state["modified"]
    return headers


class RssConnector(PollingConnector):
    kind = "rss"

    def __init__(
        self,
        settings: Settings,
        *,
        feeds: list[str] | str,
        seen_capacity: int = 2000,
        requests_per_s: float | None = 2.0,
        **options: Any,
    ) -> None:
        self.feeds = [feeds] if isinstance(feeds, str) else list(feeds)
        self.seen_capacity = seen_capacity
        options.setdefault("name", "rss")
        options.setdefault("poll_interval_s", 300.0)
        super().__init__(settings, api=ApiClient(options["name"], requests_per_s=requests_per_s), **options)

    async def poll(self, position: Any) -> AsyncIterator[Emit]:
        states: dict[str, dict] = dict((position or {}).get("feeds", {}))
        for url in self.feeds:
            async for emit in self._poll_feed(url, states):
                yield emit

    async def _poll_feed(self, url: str, states: dict[str, dict]) -> AsyncIterator[Emit]:
        state = states.get(url, {})
        response = await self.api.request("GET", url, headers=conditional_headers(state))
        if response.status == 304:
            return
        fetched_at = datetime.now(timezone.utc)
        parsed = feedparser.parse(
            response.body, response_headers={"content-type": response.headers.get("Content-Type", "")}
        )
        seen = list(state.get("seen", []))
        seen_set = set(seen)
        fresh = [e for e in parsed.entries if entry_id(e) not in seen_set]
        fresh.sort(key=lambda e: entry_time(e, fetched_at))
        validators = {"etag": response.headers.get("ETag"), "modified": response.headers.get("Last-Modified")}
        for index, entry in enumerate(fresh):
            seen = (seen + [entry_id(entry)])[-self.seen_capacity :]
            last = index == len(fresh) - 1
            states[url] = {**(validators if last else _validators(state)), "seen": seen}
            post = post_from_item(entry, lambda e: entry_to_fields(e, parsed.feed, fetched_at), self.settings)
            yield Emit.of(
                post, orjson.dumps(entry, default=str), origin=url, offset=-1, position={"feeds": dict(states)}
            )
        if not fresh:
            states[url] = {**validators, "seen": seen}
            yield Emit(position={"feeds": dict(states)})


def _validators(state: dict) -> dict:
    return {"etag": state.get("etag"), "modified": state.get("modified")}
