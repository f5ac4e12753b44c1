"""Connectors against the real embedded broker: what lands on posts.raw / posts.dlq, and the checkpoints."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from pipeline.connectors import metrics
from pipeline.connectors.files import JsonlFileConnector
from pipeline.connectors.push import PushEndpoint
from pipeline.connectors.weibo import WeiboConnector
from pipeline.schemas import DeadLetter, RawPost, Reason, decode
from pipeline.kafka import SharedProducer
from pipeline.settings import Topics
from pipeline.sinks import metrics as worker_metrics
from pipeline.topics import ensure_topics
from tests.integration.kafka_io import read_topic
from tests.unit.connectors.recorded_api import recorded_json
from tests.unit.connectors.test_connector_weibo import timeline_handler

pytestmark = pytest.mark.integration

T0 = datetime(2024, 6, 1, 8, 0, tzinfo=timezone.utc)


async def test_jsonl_file_lands_on_raw_with_keys_and_post_timestamps(make_settings, tmp_path):
    settings = make_settings()
    await ensure_topics(settings)
    path = tmp_path / "posts.jsonl"
    lines = [
        json.dumps(
            {
                "id": f"p{i}",
                "source": "file",
                "text": f"post {i}",
                "created_at": (T0 + timedelta(minutes=i)).isoformat(),
            }
        )
        for i in range(20)
    ]
    lines[5:5] = ["{broken"]
    path.write_text("\n".join(lines) + "\n")

    produced_before = metrics.POSTS_PRODUCED.labels("jsonl-posts")._value.get()
    dead_before = worker_metrics.DLQ.labels("not_json")._value.get()

    stats = await JsonlFileConnector(settings, path=path).run()

    assert (stats.posts, stats.dead_letters) == (20, 1)
    assert (
        metrics.POSTS_PRODUCED.labels("jsonl-posts")._value.get() - produced_before == 20
    )  # counted once acknowledged
    assert worker_metrics.DLQ.labels("not_json")._value.get() - dead_before == 1  # as the stages count theirs
    assert metrics.CHECKPOINT_LAG.labels("jsonl-posts")._value.get() == 0
    raw = await read_topic(settings, Topics.RAW, expected=20)
    assert sorted(r.key for r in raw) == sorted(f"file:p{i}".encode() for i in range(20))
    for record in raw:
        post = decode(record.value, RawPost)
        assert record.timestamp == int(post.created_at.timestamp() * 1000)  # CreateTime = the post's own time
    dead_records = await read_topic(settings, Topics.DLQ, expected=1)
    dead = [decode(r.value, DeadLetter) for r in dead_records]
    assert [(d.reason, d.offset, d.original) for d in dead] == [(Reason.NOT_JSON, 6, b"{broken")]
    assert dead_records[0].key == f"{path.resolve()}:-1:6".encode()  # the stages' key: where the input was
    checkpoint = json.loads((settings.data_dir / "checkpoints" / "jsonl-posts.json").read_text())["position"]
    assert checkpoint == {"path": str(path.resolve()), "offset": path.stat().st_size, "line": 21}


async def test_weibo_poll_produces_once_and_the_next_run_resumes_from_since_id(make_settings, recorded_api):
    settings = make_settings()
    await ensure_topics(settings)
    timeline = recorded_json("weibo", "user_timeline.json")["statuses"]
    api = await recorded_api({"/2/statuses/user_timeline.json": timeline_handler(timeline)})

    def weibo() -> WeiboConnector:
        return WeiboConnector(
            settings, uid="5617030362", access_token="tok", base_url=api.base_url, once=True, requests_per_s=None
        )

    first = await weibo().run()
    second = await weibo().run()

    assert (first.posts, first.dead_letters, second.posts) == (len(timeline) - 1, 1, 0)
    assert api.requests[-1].query["since_id"] == str(max(s["id"] for s in timeline))
    raw = await read_topic(settings, Topics.RAW, expected=len(timeline) - 1)
    assert {decode(r.value, RawPost).id for r in raw} == {s["idstr"] for s in timeline} - {"3807900000000001"}


@pytest.fixture
async def push_server(make_settings):
    """The push app on a local port in front of a real producer; yields (settings, base url)."""
    settings = make_settings(max_message_bytes=32 * 1024)
    await ensure_topics(settings)
    endpoint = PushEndpoint(settings, token=TOKEN, max_body_bytes=64 * 1024)
    async with SharedProducer(settings, "http-test") as producer:
        server = TestServer(endpoint.app(producer))
        await server.start_server()
        yield settings, str(server.make_url("/v1/posts"))
        await server.close()


TOKEN = "a-push-token-for-tests"


def batch(*ids: str) -> dict:
    return {"posts": [{"id": i, "source": "http", "text": f"t {i}", "created_at": T0.isoformat()} for i in ids]}


async def test_push_endpoint_auth_limits_validation_and_all_or_nothing(push_server):
    settings, url = push_server
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with ClientSession() as http:
        assert (await http.post(url, json=batch("a"))).status == 401
        assert (await http.post(url, json=batch("a"), headers={"Authorization": "Bearer nope"})).status == 401
        too_big = {"posts": [{"id": "big", "source": "http", "text": "x" * 70_000, "created_at": T0.isoformat()}]}
        assert (await http.post(url, json=too_big, headers=auth)).status == 413
        assert (await http.post(url, data=b"{nope", headers=auth)).status == 400

        bad = batch("b1", "b2")
        bad["posts"][1]["created_at"] = "not a date"
        rejected = await http.post(url, json=bad, headers=auth)
        assert rejected.status == 422
        [error] = (await rejected.json())["errors"]
        assert (error["index"], error["reason"]) == (1, "wrong_type") and error["detail"].startswith("created_at:")

        poison = batch("p1", "p2")  # the year-1 date that once made the endpoint answer 500
        poison["posts"][0]["created_at"] = "0001-01-01T00:00:00+08:00"
        poison["posts"][1]["metrics"] = {"likes": 2**63}
        refused = await http.post(url, json=poison, headers=auth)
        assert refused.status == 422
        assert [(e["index"], e["reason"]) for e in (await refused.json())["errors"]] == [(0, "invalid_value"), (1, "invalid_value")]

        accepted = await http.post(url, json=batch("c1", "c2", "c3"), headers=auth)
        assert (accepted.status, await accepted.json()) == (202, {"accepted": 3})

    raw = await read_topic(settings, Topics.RAW, expected=4, idle_s=3)
    assert sorted(orjson.loads(r.value)["id"] for r in raw) == ["c1", "c2", "c3"]  # nothing of the 422 batch
