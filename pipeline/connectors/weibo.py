"""Weibo open API: ``GET /2/statuses/user_timeline.json`` -> RawPost (source ``weibo``).

The timeline is newest first. Each poll pages down from the newest status with ``max_id`` until it
reaches the checkpoint's ``since_id``, then emits oldest first, so the position after each post
("everything up to this id is on Kafka") is always true.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import datetime
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

TIMELINE_PATH = "/2/statuses/user_timeline.json"
WEIBO_TIME_FORMAT = "%a %b %d %H:%M:%S %z %Y"  # "Sat Feb 07 10:00:00 +0800 2015"
RATE_LIMIT_CODES = {10022, 10023, 10024}  # IP / user / user-per-API request limits
TRANSIENT_CODES = {10001, 10009} | RATE_LIMIT_CODES  # system error, task queue full


def parse_weibo_time(value: str) -> datetime:
    return datetime.strptime(value, WEIBO_TIME_FORMAT)


def status_id(status: dict) -> int:
    return int(status.get("idstr") or status["id"])


def status_to_fields(status: dict) -> dict:
    """One status object -> RawPost fields (attitudes = likes); long posts carry their full text in ``longText``."""
    user = status.get("user") or {}
    sid = str(status_id(status))
    long_text = (status.get("longText") or {}).get("longTextContent")
    return {
        "id": sid,
        "source": "weibo",
        "account": user.get("screen_name"),
        "author": user.get("screen_name"),
        "text": long_text or status["text"],
        "created_at": parse_weibo_time(status["created_at"]).isoformat(),
        "url": f"https://weibo.com/{user['id']}/{sid}" if user.get("id") is not None else None,
        "metrics": {
            "reposts": status.get("reposts_count"),
            "comments": status.get("comments_count"),
            "likes": status.get("attitudes_count"),
        },
    }


def weibo_classifier(response: Response, now: float) -> SourceError | None:
    """Weibo errors are ``{"error", "error_code"}`` bodies on HTTP 4xx; its rate limits are 403 + code 1002x."""
    error = default_classifier(response, now)
    if error is None or isinstance(error, TransientSourceError):
        return error
    try:
        code = orjson.loads(response.body).get("error_code")
    except (orjson.JSONDecodeError, AttributeError):
        return error
    if code in TRANSIENT_CODES:
        kind = "rate_limited" if code in RATE_LIMIT_CODES else "api_busy"
        return TransientSourceError(f"{response.url}: weibo error_code {code}", kind=kind)
    assert isinstance(error, FatalSourceError)
    return FatalSourceError(f"{error} [weibo error_code {code}; 21327/21332 = expired/invalid access_token]")


class WeiboConnector(PollingConnector):
    kind = "weibo"

    def __init__(
        self,
        settings: Settings,
        *,
        uid: str | None = None,
        screen_name: str | None = None,
        access_token: str | None = None,
        base_url: str = "https://api.weibo.com",
        count: int = 100,
        max_pages: int = 50,
        requests_per_s: float | None = 1.0,
        **options: Any,
    ) -> None:
        if not uid and not screen_name:
            raise ValueError("weibo connector needs uid= or screen_name=")
        self.account_params = {"uid": uid, "screen_name": screen_name}
        self.access_token = access_token or os.environ.get("WEIBO_ACCESS_TOKEN")
        if not self.access_token:
            raise ValueError("weibo connector needs access_token= or WEIBO_ACCESS_TOKEN")
        self.count = count
        self.max_pages = max_pages
        options.setdefault("name", f"weibo-{uid or screen_name}")
        super().__init__(settings, api=ApiClient(options["name"], base_url, requests_per_s=requests_per_s), **options)

    async def _newer_than(self, since_id: int) -> dict[int, dict]:
        """All statuses with id > since_id, paging down with max_id (bounded by max_pages)."""
        collected: dict[int, dict] = {}
        max_id: int | None = None
        for _ in range(self.max_pages):
            params = {"access_token": self.access_token, **self.account_params, "count": self.count}
            params |= {"since_id": since_id or None, "max_id": max_id}
            body = await self.api.get_json(TIMELINE_PATH, params=params, classify=weibo_classifier)
            page = {status_id(s): s for s in body.get("statuses") or []}
            fresh = {sid: s for sid, s in page.items() if sid > since_id and (max_id is None or sid <= max_id)}
            if not fresh:
                break
            collected |= fresh
            max_id = min(fresh) - 1
        return collected

    async def poll(self, position: Any) -> AsyncIterator[Emit]:
        since_id = int(position["since_id"]) if position else 0
        statuses = await self._newer_than(since_id)
        for sid in sorted(statuses):
            parsed = post_from_item(statuses[sid], status_to_fields, self.settings)
            original = orjson.dumps(statuses[sid])
            yield Emit.of(
                parsed, original, origin=self.api.url(TIMELINE_PATH), offset=sid, position={"since_id": str(sid)}
            )
