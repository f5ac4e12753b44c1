"""Weibo user_timeline adapter against a local server answering with recorded Weibo responses."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from aiohttp import web

from pipeline.backoff import Backoff
from pipeline.connectors.http import FatalSourceError, RetryPolicy
from pipeline.connectors.weibo import WeiboConnector, parse_weibo_time, status_to_fields
from pipeline.schemas import Reason
from tests.unit.connectors.recorded_api import collect, json_reply, recorded_bytes, recorded_json

TIMELINE = recorded_json("weibo", "user_timeline.json")


def timeline_handler(statuses: list[dict]):
    """Answers like the real endpoint: newest first, since_id < id <= max_id, at most `count`."""

    async def handle(request: web.Request) -> web.Response:
        since_id = int(request.query.get("since_id", 0))
        max_id = int(request.query.get("max_id", 2**63))
        count = int(request.query.get("count", 20))
        page = [s for s in statuses if since_id < s["id"] <= max_id][:count]
        return json_reply(dict(TIMELINE, statuses=page, total_number=len(statuses)))

    return handle


def connector(settings, api) -> WeiboConnector:
    weibo = WeiboConnector(
        settings, uid="5617030362", access_token="tok", base_url=api.base_url, count=2, once=True, requests_per_s=None
    )
    weibo.api.retry = RetryPolicy(max_attempts=4, backoff=Backoff(base_s=0.01, cap_s=0.02))
    return weibo


def test_weibo_time_and_counters_map_to_raw_post_fields():
    assert parse_weibo_time("Sat Feb 07 10:00:00 +0800 2015").astimezone(timezone.utc) == datetime(
        2015, 2, 7, 2, 0, tzinfo=timezone.utc
    )
    status = next(s for s in TIMELINE["statuses"] if s["idstr"] == "3808362252531712")
    fields = status_to_fields(status)
    assert fields["id"] == "3808362252531712" and fields["account"] == "俄罗斯驻华大使馆"
    assert fields["text"].endswith("三、健康证明。")  # the long text, not the truncated one
    assert fields["url"] == "https://weibo.com/5617030362/3808362252531712"
    assert fields["metrics"] == {"reposts": 45, "comments": 18, "likes": 77}


async def test_poll_pages_down_to_the_checkpoint_and_emits_oldest_first(recorded_api, settings):
    api = await recorded_api({"/2/statuses/user_timeline.json": timeline_handler(TIMELINE["statuses"])})
    emits = await collect(connector(settings, api).stream(None))
    ids = [int(e.post.id) if e.post else int(e.dead_letter.offset) for e in emits]
    assert ids == sorted(s["id"] for s in TIMELINE["statuses"])
    assert [e.position["since_id"] for e in emits] == [str(i) for i in ids]
    dead = [e.dead_letter for e in emits if e.dead_letter]
    assert len(dead) == 1 and dead[0].offset == 3807900000000001 and dead[0].reason == Reason.INVALID_VALUE
    assert len(api.requests) == 4  # 6 statuses / count 2 = 3 pages, and one empty page ends the pass
    assert all(r.query["access_token"] == "tok" and r.query["uid"] == "5617030362" for r in api.requests)
    assert [r.query.get("max_id") for r in api.requests[1:3]] == [str(ids[-2] - 1), str(ids[-4] - 1)]


async def test_next_poll_asks_only_for_newer_statuses(recorded_api, settings):
    older, newest = TIMELINE["statuses"][1:], TIMELINE["statuses"][0]
    statuses = list(older)
    api = await recorded_api({"/2/statuses/user_timeline.json": timeline_handler(statuses)})
    weibo = connector(settings, api)
    first = await collect(weibo.stream(None))
    statuses.insert(0, newest)
    second = await collect(weibo.stream(first[-1].position))
    assert [e.post.id for e in second] == [newest["idstr"]]
    assert api.requests[-1].query["since_id"] == first[-1].position["since_id"]


async def test_5xx_and_weibo_rate_limit_codes_are_retried(recorded_api, settings):
    api = await recorded_api(
        {"/2/statuses/user_timeline.json": timeline_handler(TIMELINE["statuses"])},
        failures=[
            lambda: web.Response(status=502, text="Bad Gateway"),
            lambda: json_reply(recorded_bytes("weibo", "error_rate_limit.json"), status=403),
        ],
    )
    emits = await collect(connector(settings, api).stream(None))
    assert len(emits) == len(TIMELINE["statuses"])


async def test_expired_token_stops_with_a_clear_message(recorded_api, settings):
    api = await recorded_api(
        {"/2/statuses/user_timeline.json": timeline_handler(TIMELINE["statuses"])},
        failures=[lambda: json_reply(recorded_bytes("weibo", "error_expired_token.json"), status=403)],
    )
    with pytest.raises(FatalSourceError, match="error_code 21327.*access_token"):
        await collect(connector(settings, api).stream(None))
    assert len(api.requests) == 1
