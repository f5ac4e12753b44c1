"""WeChat official-account article lists -> RawPost (source ``wechat``).

Reads the JSON article list of one account (``app_msg_list`` items as the mp.weixin.qq.com
``appmsg`` list returns them, each with its ``appmsgstat`` counters), paged by ``begin``/``count``
until ``is_last`` or ``total_count``. Counters: ``read_num`` = pageviews; ``like_num`` = "looking
at" (在看: WeChat 7.0 turned the Like button into "Look at", paper 004); ``old_like_num`` = the
thumbs-up restored later = likes. Errors come as ``base_resp.ret`` != 0 on HTTP 200.

Lists are newest first; a poll pages until it reaches articles at or before the checkpoint's
``create_time`` watermark, then emits oldest first.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

import orjson

from pipeline.connectors.base import Emit, PollingConnector
from pipeline.connectors.http import (
    ApiClient,
    FatalSourceError,
    Response,
    SourceError,
    TransientSourceError,
    default_classifier,
)
from pipeline.connectors.validation import post_from_item
from pipeline.settings import Settings

FREQ_CONTROL = 200013
TRANSIENT_RETS = {-1, FREQ_CONTROL}  # system busy, frequency control
FATAL_HINTS = {
    200003: "invalid session: refresh the token/cookie",
    200040: "invalid csrf token",
    200002: "invalid args",
}


def article_id(item: dict) -> str:
    """``aid`` is "<appmsgid>_<itemidx>": one push can carry several articles."""
    return str(item.get("aid") or f"{item['appmsgid']}_{item.get('itemidx', 1)}")


def created(item: dict) -> int:
    """Publication time in epoch seconds; 0 for an item without one (it then fails validation on the first pass)."""
    return int(item.get("create_time") or 0)


def article_to_fields(item: dict, account: str | None) -> dict:
    stat = item.get("appmsgstat") or {}
    return {
        "id": article_id(item),
        "source": "wechat",
        "account": account,
        "author": item.get("author_name") or item.get("author") or None,
        "title": item["title"],
        "text": item.get("content") or item.get("digest") or "",
        "created_at": datetime.fromtimestamp(int(item["create_time"]), timezone.utc).isoformat(),
        "url": item.get("link"),
        "lang": "zh",
        "metrics": {
            "pageviews": stat.get("read_num"),
            "looking_at": stat.get("like_num"),
            "likes": stat.get("old_like_num"),
        },
    }


def wechat_classifier(response: Response, now: float) -> SourceError | None:
    error = default_classifier(response, now)
    if error is not None:
        return error
    try:
        base = orjson.loads(response.body).get("base_resp") or {}
    except (orjson.JSONDecodeError, AttributeError):
        return None  # get_json reports unparsable bodies
    ret = base.get("ret", 0)
    if ret == 0:
        return None
    message = f"{response.url}: wechat base_resp.ret={ret} ({base.get('err_msg')})"
    if ret in TRANSIENT_RETS:
        return TransientSourceError(message, kind="rate_limited" if ret == FREQ_CONTROL else "api_busy")
    return FatalSourceError(f"{message}: {FATAL_HINTS.get(ret, 'request rejected')}")


class WechatConnector(PollingConnector):
    kind = "wechat"

    def __init__(
        self,
        settings: Settings,
        *,
        fakeid: str,
        account: str | None = None,
        token: str | None = None,
        base_url: str = "https://mp.weixin.qq.com",
        path: str = "/cgi-bin/appmsg",
        count: int = 5,
        max_pages: int = 100,
        requests_per_s: float | None = 0.2,
        **options: Any,
    ) -> None:
        self.fakeid = fakeid
        self.account = account
        self.token = token or os.environ.get("WECHAT_TOKEN")
        self.path = path
        self.count = count
        self.max_pages = max_pages
        options.setdefault("name", f"wechat-{fakeid}")
        super().__init__(settings, api=ApiClient(options["name"], base_url, requests_per_s=requests_per_s), **options)

    async def _newer_than(self, since: int, seen: set[str]) -> list[dict]:
        articles: list[dict] = []
        begin = 0
        for _ in range(self.max_pages):
            params = {"action": "list_ex", "fakeid": self.fakeid, "type": 9, "begin": begin, "count": self.count}
            params |= {"token": self.token, "f": "json", "ajax": 1}
            body = await self.api.get_json(self.path, params=params, classify=wechat_classifier)
            page = body.get("app_msg_list") or []
            articles += [a for a in page if created(a) >= since and article_id(a) not in seen]
            begin += len(page)
            reached_checkpoint = any(created(a) < since for a in page)
            if not page or reached_checkpoint or body.get("is_last") or begin >= body.get("total_count", float("inf")):
                break
        return sorted(articles, key=lambda a: (created(a), article_id(a)))

    async def poll(self, position: Any) -> AsyncIterator[Emit]:
        since = int(position["since"]) if position else 0
        seen = set(position["seen"]) if position else set()
        for item in await self._newer_than(since, seen):
            published = created(item)
            if published > since:
                since, seen = published, set()
            seen.add(article_id(item))
            parsed = post_from_item(item, lambda a: article_to_fields(a, self.account), self.settings)
            position = {"since": since, "seen": sorted(seen)}
            yield Emit.of(
                parsed, orjson.dumps(item), origin=self.api.url(self.path), offset=published, position=position
            )
