"""What every pull connector shares: producing to the raw topic, checkpoints, post-rate limit, metrics.

A connector only implements `stream(position)`: an async iterator of `Emit`s, each carrying a post
(or a dead letter) and the position to resume from once it is durable. The base class sends the
records through an `Outbox` (`pipeline.kafka`) every `checkpoint_interval_s` or `checkpoint_every`
records, and saves a position only after the broker has acknowledged every record up to it, so a
crash repeats at most the unacknowledged tail (at-least-once) and never skips anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, ClassVar

from pipeline.connectors import metrics
from pipeline.connectors.checkpoint import CheckpointStore
from pipeline.connectors.http import ApiClient, FatalSourceError, jittered
from pipeline.connectors.ratelimit import TokenBucket
from pipeline.kafka import Outbox, SharedProducer, count_dead_letters, send_dead_letter
from pipeline.schemas import DeadLetter, RawPost, Rejection
from pipeline.settings import Settings, Topics

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Emit:
    """One step of a source: a post, a dead letter, or neither (a bare position update)."""

    post: RawPost | None = None
    dead_letter: DeadLetter | None = None
    position: Any = None
    """JSON-serialisable resume state once this record and all before it are durable; None = unchanged."""

    @classmethod
    def of(cls, parsed: RawPost | Rejection, original: bytes, *, origin: str, offset: int, position: Any) -> Emit:
        """A post, or the dead letter of a source item that did not validate (origin = file path or URL)."""
        if isinstance(parsed, Rejection):
            dead = DeadLetter.of(parsed, original, topic=origin, partition=-1, offset=offset)
            return cls(dead_letter=dead, position=position)
        return cls(post=parsed, position=position)


class Checkpointer:
    """Sends a connector's records through an `Outbox` and saves its resume position only after
    the broker acknowledged every record before it (commit after ack, as the stages do).

    Once the broker refuses a record, no later position is ever saved (that would skip the
    refused record on restart): the connector stops, and a restart resends from the last saved
    position. A commit that is cancelled (SIGTERM) still finishes its delivery and save.
    """

    def __init__(self, name: str, store: CheckpointStore, outbox: Outbox, settings: Settings) -> None:
        self.name = name
        self.store = store
        self.outbox = outbox
        self.settings = settings
        self.raw_topic = settings.topic(Topics.RAW)
        self._posts = 0
        self._letters: list[DeadLetter] = []
        self._position: Any = None
        self._dirty = False
        self._failure: BaseException | None = None
        self._lock = asyncio.Lock()

    def add(self, emit: Emit) -> None:
        if self._failure is not None:
            raise self._failure
        if emit.post is not None:  # CreateTime = the post's own time, so replays can select by it
            self.outbox.send(self.raw_topic, emit.post.key, emit.post.encode(), emit.post.created_at.timestamp())
            self._posts += 1
        elif emit.dead_letter is not None:
            send_dead_letter(self.outbox, self.settings, emit.dead_letter)
            self._letters.append(emit.dead_letter)
        if emit.position is not None:
            self._position = emit.position
            self._dirty = True
        metrics.CHECKPOINT_LAG.labels(self.name).set(len(self))

    def __len__(self) -> int:
        return len(self.outbox)

    async def commit(self) -> None:
        await asyncio.shield(self._commit())

    async def _commit(self) -> None:
        async with self._lock:
            if self._failure is not None:
                raise self._failure
            posts, letters, position, dirty = self._posts, self._letters, self._position, self._dirty
            self._posts, self._letters, self._dirty = 0, [], False
            try:
                await self.outbox.delivered()
            except Exception as exc:
                self._failure = exc
                raise
            metrics.POSTS_PRODUCED.labels(self.name).inc(posts)
            count_dead_letters(letters)
            if dirty:
                self.store.save(position)
                metrics.CHECKPOINT_SAVED.labels(self.name).set(time.time())
            metrics.CHECKPOINT_LAG.labels(self.name).set(len(self))


@dataclass
class RunStats:
    posts: int = 0
    dead_letters: int = 0


class Connector:
    """Base of pull connectors. Subclasses set `kind` and implement `stream`."""

    kind: ClassVar[str]

    def __init__(
        self,
        settings: Settings,
        *,
        name: str | None = None,
        max_posts_per_s: float | None = None,
        checkpoint_every: int = 500,
        checkpoint_interval_s: float = 0.05,
    ) -> None:
        self.settings = settings
        self.name = name or self.kind
        self.checkpoints = CheckpointStore(settings.data_dir / "checkpoints" / f"{self.name}.json")
        self._post_bucket = TokenBucket(max_posts_per_s)
        self._checkpoint_every = checkpoint_every
        self._checkpoint_interval_s = checkpoint_interval_s

    def stream(self, position: Any) -> AsyncIterator[Emit]:
        """Items from `position` (None = from the start / now, as the source defines it)."""
        raise NotImplementedError

    async def _commit_periodically(self, checkpointer: Checkpointer) -> None:
        while True:
            await asyncio.sleep(self._checkpoint_interval_s)
            await checkpointer.commit()

    async def _count(self, emit: Emit, stats: RunStats) -> None:
        if emit.post is not None:
            waited = await self._post_bucket.acquire()
            if waited:
                metrics.RATE_LIMIT_WAIT.labels(self.name).inc(waited)
            stats.posts += 1
        elif emit.dead_letter is not None:
            stats.dead_letters += 1

    async def run(self) -> RunStats:
        """Produce until the source ends (files, `once` polls) or the task is cancelled."""
        stats = RunStats()
        async with SharedProducer(self.settings, client_id=f"pd-connector-{self.name}") as producer:
            checkpointer = Checkpointer(self.name, self.checkpoints, await producer.outbox(), self.settings)
            ticker = asyncio.create_task(self._commit_periodically(checkpointer))
            try:
                async with contextlib.aclosing(self.stream(self.checkpoints.load())) as emits:
                    async for emit in emits:
                        await self._count(emit, stats)
                        checkpointer.add(emit)
                        if len(checkpointer) >= self._checkpoint_every:
                            await checkpointer.commit()
            finally:
                ticker.cancel()
                await asyncio.gather(ticker, return_exceptions=True)
                await checkpointer.commit()
        return stats


def run_until_signalled(connector: Any) -> Any:
    """Run `connector.run()` in a fresh loop; SIGTERM/SIGINT cancel it, which still commits what was acknowledged."""

    async def main() -> Any:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            return await connector.run()
        except asyncio.CancelledError:
            return None

    try:
        return asyncio.run(main())
    except FatalSourceError as exc:
        log.error("connector %s stopped: %s", connector.name, exc)
        raise SystemExit(f"connector {connector.name} stopped: {exc}") from exc


class PollingConnector(Connector):
    """A source polled on an interval: `poll` yields one catch-up pass; `once=True` stops after it."""

    def __init__(
        self,
        settings: Settings,
        *,
        api: ApiClient,
        poll_interval_s: float = 60.0,
        once: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(settings, **options)
        self.api = api
        self.poll_interval_s = poll_interval_s
        self.once = once

    def poll(self, position: Any) -> AsyncIterator[Emit]:
        raise NotImplementedError

    async def stream(self, position: Any) -> AsyncIterator[Emit]:
        async with self.api:
            while True:
                async for emit in self.poll(position):
                    if emit.position is not None:
                        position = emit.position
                    yield emit
                if self.once:
                    return
                await asyncio.sleep(jittered(self.poll_interval_s))
