"""The typed alert client on the real broker: the newest transition per alert, CloudEvents
headers as published, and a group that resumes where it committed."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from pipeline.client import AlertSubscriber
from pipeline.contract import cloudevent_headers, transition_id
from pipeline.kafka import SharedProducer
from pipeline.settings import PROJECT_ROOT, Topics
from pipeline.testing import settings_env
from pipeline.topics import ensure_topics
from tests.alert_samples import alert

pytestmark = pytest.mark.integration

OPEN, ESCALATED, RESOLVED = alert("open"), alert("updated", "critical", hours=2), alert("resolved", "critical", hours=5)
OTHER = alert("open", alert_id="b0b0b0b0b0b0b0b0b0b0")


async def publish(settings, transitions, extra: list[bytes] = ()) -> None:
    """As the detect stage publishes: keyed by alert id, CloudEvents headers, through an Outbox."""
    async with SharedProducer(settings) as producer:
        outbox = await producer.outbox()
        topic = settings.topic(Topics.ALERTS)
        for transition in transitions:
            outbox.send(topic, transition.id.encode(), transition.encode(), headers=cloudevent_headers(transition, "/test"))
        for value in extra:
            outbox.send(topic, OPEN.id.encode(), value)
        await outbox.delivered()


async def read(subscriber: AlertSubscriber, count: int, timeout_s: float = 30.0) -> list:
    deliveries = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while len(deliveries) < count and loop.time() < deadline:
        deliveries += await subscriber.poll(timeout_s=0.5)
    return deliveries


def test_the_subscriber_keeps_the_newest_transition_and_yields_each_new_one(make_settings):
    settings = make_settings()
    asyncio.run(ensure_topics(settings, (Topics.ALERTS,)))
    # a redelivered open after the resolve (a detect batch published twice) must not reopen the alert
    asyncio.run(publish(settings, [OPEN, OTHER, ESCALATED, RESOLVED, OPEN], extra=[b'{"schema": "alert", "v": 1}']))

    async def subscribe() -> tuple[list, list]:
        seen = []
        async with AlertSubscriber(settings) as subscriber:

            async def iterate() -> None:
                async for transition in subscriber:
                    seen.append(transition)

            task = asyncio.create_task(iterate())
            while len(subscriber.book) < 2 or subscriber.book.get(OPEN.id).state.value != "resolved":
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # the stale open and the bad record come after the resolve
            task.cancel()
            return seen, subscriber.book.firing()

    seen, firing = asyncio.run(asyncio.wait_for(subscribe(), 60))
    assert sorted(seen, key=lambda a: (a.id, a.updated_at)) == sorted([OPEN, OTHER, ESCALATED, RESOLVED], key=lambda a: (a.id, a.updated_at))
    assert firing == [OTHER]


def test_records_carry_cloudevents_headers_and_a_restarted_group_knows_what_it_handled(make_settings):
    settings = make_settings(topic_partitions=1)
    asyncio.run(ensure_topics(settings, (Topics.ALERTS,)))
    asyncio.run(publish(settings, [OPEN, ESCALATED]))
    group = settings.group_id("client-test")

    async def first_run() -> list:
        async with AlertSubscriber(settings, group_id=group) as subscriber:
            deliveries = await read(subscriber, 2)
            await subscriber.commit()
            return deliveries

    deliveries = asyncio.run(first_run())
    assert [d.alert for d in deliveries] == [OPEN, ESCALATED] and not any(d.replayed for d in deliveries)
    headers = dict(deliveries[1].record.headers)
    assert headers["ce_id"] == transition_id(ESCALATED).encode() and headers["ce_type"] == b"pd-monitor.alert.updated"
    assert headers["ce_source"] == b"/test" and headers["content-type"] == b"application/json"

    asyncio.run(publish(settings, [RESOLVED], extra=[b"not json"]))

    async def second_run() -> list:
        async with AlertSubscriber(settings, group_id=group) as subscriber:
            return await read(subscriber, 4)

    again = asyncio.run(second_run())
    assert [(d.replayed, d.alert) for d in again[:3]] == [(True, OPEN), (True, ESCALATED), (False, RESOLVED)]
    assert again[3].alert is None and again[3].rejection.reason.value == "not_json" and not again[3].replayed


def readme_example() -> str:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    after = readme.split("Example consumer", 1)[1]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_example_consumer_prints_each_new_transition(make_settings, tmp_path):
    settings = make_settings()
    asyncio.run(ensure_topics(settings, (Topics.ALERTS,)))
    asyncio.run(publish(settings, [OPEN, ESCALATED, ESCALATED, RESOLVED]))  # one repeated
    script = tmp_path / "consumer.py"
    script.write_text(readme_example())
    consumer = subprocess.Popen(
        [sys.executable, str(script)], cwd=PROJECT_ROOT, env=settings_env(settings), stdout=subprocess.PIPE, text=True
    )
    try:
        lines = [consumer.stdout.readline().strip() for _ in range(3)]
    finally:
        consumer.kill()
        consumer.wait(10)
    assert lines == [
        "open warning hk_mainland_tourists all 25",
        "updated critical hk_mainland_tourists all 25",
        "resolved critical hk_mainland_tourists all 25",
    ]
