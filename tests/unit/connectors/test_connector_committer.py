"""The at-least-once rule: a position is saved only after every record before it was acknowledged."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from pipeline.connectors.base import Checkpointer, Emit
from pipeline.connectors.checkpoint import CheckpointStore
from pipeline.schemas import DeadLetter, RawPost, Reason, Rejection
from pipeline.settings import Settings


class Outbox:
    """Queues like `pipeline.kafka.Outbox`; each `delivered()` waits for the test to acknowledge it."""

    def __init__(self):
        self.queued: list[tuple] = []
        self.acks: asyncio.Queue[BaseException | None] = asyncio.Queue()
        self.sent: list[list[tuple]] = []

    def send(self, topic, key, value, timestamp_s=None, partition=None, headers=()):
        self.queued.append((topic, key))

    def __len__(self):
        return len(self.queued)

    async def delivered(self):
        batch, self.queued = self.queued, []
        failure = await self.acks.get()
        if failure is not None:
            raise failure
        self.sent.append(batch)


def post(i: int) -> Emit:
    raw = RawPost(id=str(i), source="x", text="t", created_at=datetime(2015, 2, 8, tzinfo=timezone.utc))
    return Emit(post=raw, position={"line": i})


@pytest.fixture
def store(tmp_path) -> CheckpointStore:
    return CheckpointStore(tmp_path / "c.json")


async def test_position_waits_for_the_acknowledgement_of_every_earlier_record(store):
    outbox = Outbox()
    checkpointer = Checkpointer("t", store, outbox, Settings())
    checkpointer.add(post(1))
    checkpointer.add(post(2))
    commit = asyncio.create_task(checkpointer.commit())
    await asyncio.sleep(0.01)
    assert not commit.done() and store.load() is None  # not acknowledged yet
    outbox.acks.put_nowait(None)
    await commit
    assert store.load() == {"line": 2}
    assert [key for _, key in outbox.sent[0]] == [b"x:1", b"x:2"]


async def test_a_refused_record_blocks_every_later_checkpoint(store):
    outbox = Outbox()
    checkpointer = Checkpointer("t", store, outbox, Settings())
    checkpointer.add(post(1))
    outbox.acks.put_nowait(RuntimeError("broker said no"))
    with pytest.raises(RuntimeError):
        await checkpointer.commit()
    with pytest.raises(RuntimeError):
        checkpointer.add(post(2))
    with pytest.raises(RuntimeError):
        await checkpointer.commit()
    assert store.load() is None


async def test_a_cancelled_commit_still_finishes_its_delivery_and_save(store):
    outbox = Outbox()
    checkpointer = Checkpointer("t", store, outbox, Settings())
    checkpointer.add(post(1))
    commit = asyncio.create_task(checkpointer.commit())
    await asyncio.sleep(0.01)
    commit.cancel()  # SIGTERM while the broker has not answered yet
    await asyncio.gather(commit, return_exceptions=True)
    outbox.acks.put_nowait(None)
    outbox.acks.put_nowait(None)
    await checkpointer.commit()  # the connector's last commit waits for the one in flight
    assert store.load() == {"line": 1}


async def test_dead_letters_share_the_stages_key_and_a_bare_position_is_saved(store):
    outbox = Outbox()
    checkpointer = Checkpointer("t", store, outbox, Settings())
    letter = DeadLetter.of(Rejection(Reason.NOT_JSON, "bad"), b"{", "feed.jsonl", -1, 7)
    checkpointer.add(Emit(dead_letter=letter, position={"line": 7}))
    checkpointer.add(Emit(position={"feeds": {"u": {"etag": '"v2"'}}}))
    outbox.acks.put_nowait(None)
    await checkpointer.commit()
    assert outbox.sent == [[("posts.dlq", b"feed.jsonl:-1:7")]]
    assert store.load() == {"feeds": {"u": {"etag": '"v2"'}}}
