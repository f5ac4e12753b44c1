"""The at-least-once rule: a position is saved only after every record before it was acknowledged."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.connectors.base import _Committer
from pipeline.connectors.checkpoint import CheckpointStore


@pytest.fixture
def store(tmp_path) -> CheckpointStore:
    return CheckpointStore(tmp_path / "c.json")


async def test_position_waits_for_the_acknowledgement_of_every_earlier_record(store):
    committer = _Committer("t", store)
    loop = asyncio.get_running_loop()
    first, second = loop.create_future(), loop.create_future()
    committer.add(first, True, {"line": 1})
    committer.add(second, True, {"line": 2})
    commit = asyncio.create_task(committer.commit())
    second.set_result(None)
    await asyncio.sleep(0.01)
    assert not commit.done() and store.load() is None  # line 1 not acknowledged yet
    first.set_result(None)
    await commit
    assert store.load() == {"line": 2}
    assert len(committer) == 0


async def test_a_refused_record_blocks_every_later_checkpoint(store):
    committer = _Committer("t", store)
    loop = asyncio.get_running_loop()
    ok, refused = loop.create_future(), loop.create_future()
    committer.add(ok, True, {"line": 1})
    committer.add(refused, True, {"line": 2})
    ok.set_result(None)
    refused.set_exception(RuntimeError("broker said no"))
    with pytest.raises(RuntimeError):
        await committer.commit()
    later = loop.create_future()
    later.set_result(None)
    with pytest.raises(RuntimeError):
        committer.add(later, True, {"line": 3})
    with pytest.raises(RuntimeError):
        await committer.commit()
    assert store.load() is None


async def test_cancelling_a_commit_keeps_the_unacknowledged_records_pending(store):
    committer = _Committer("t", store)
    pending = asyncio.get_running_loop().create_future()
    committer.add(pending, True, {"line": 1})
    commit = asyncio.create_task(committer.commit())
    await asyncio.sleep(0.01)
    commit.cancel()
    await asyncio.gather(commit, return_exceptions=True)
    assert not pending.cancelled()  # the send itself is not abandoned
    assert len(committer) == 1 and store.load() is None
    pending.set_result(None)
    await committer.commit()
    assert store.load() == {"line": 1}


async def test_a_bare_position_update_is_saved_without_records(store):
    committer = _Committer("t", store)
    committer.add(None, False, {"feeds": {"u": {"etag": '"v2"'}}})
    await committer.commit()
    assert store.load() == {"feeds": {"u": {"etag": '"v2"'}}}
