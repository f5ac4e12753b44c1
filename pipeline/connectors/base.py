"""What every pull connector shares: producing to the raw topic, checkpoints, post-rate limit, metrics.

A connector only implements `stream(position)`: an async iterator of `Emit`s, each carrying a post
(or a dead letter) and the position to resume from once it is durable. The base class sends the
records and saves a position only after the broker has acknowledged every record up to it, so a
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

from aiokafka import AIOKafkaProducer

from pipeline.connectors import metrics
from pipeline.connectors.checkpoint import CheckpointStore
from pipeline.connectors.http import ApiClient, FatalSourceError, jittered
from pipeline.connectors.ratelimit import TokenBucket
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


class KafkaSink:
    """Plain producer (acks=all, no idempotence: the embedded broker lacks InitProducerId)."""

    def __init__(self, settings: Settings, client_id: str) -> None:
        self.raw_topic = settings.topic(Topics.RAW)
        self.dlq_topic = settings.topic(Topics.DLQ)
        self._producer = AIOKafkaProducer(
            **settings.kafka_client_kwargs(),
            client_id=f"pd-connector-{client_id}",
            acks="all",
            enable_idempotence=False,
            linger_ms=5,
            max_request_size=max(1024 * 1024, 2 * settings.max_message_bytes),
        )

    async def __aenter__(self) -> KafkaSink:
        await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._producer.stop()

    async def send_post(self, post: RawPost) -> asyncio.Future:
        """Queue a post; CreateTime = the post's own time so replays can select by it."""
        timestamp_ms = int(post.created_at.timestamp() * 1000)
        return await self._producer.send(self.raw_topic, value=post.encode(), key=post.key, timestamp_ms=timestamp_ms)

    async def send_dead_letter(self, dead_letter: DeadLetter) -> asyncio.Future:
        return await self._producer.send(self.dlq_topic, value=dead_letter.encode())


class _Committer:
    """Pairs in-flight sends with the position they lead to; `commit` awaits the acks, then saves.

    Records leave the pending list only once acknowledged, so a commit interrupted by
    cancellation loses nothing; once the broker refuses a record, no later position is ever
    saved (that would skip the refused record on restart).
    """

    def __init__(self, name: str, store: CheckpointStore) -> None:
        self.name = name
        self.store = store
        self._pending: list[tuple[asyncio.Future, bool]] = []
        self._position: Any = None
        self._dirty = False
        self._failure: BaseException | None = None
        self._lock = asyncio.Lock()

    def add(self, future: asyncio.Future | None, is_post: bool, position: Any) -> None:
        if self._failure is not None:
            raise self._failure
        if future is not None:
            self._pending.append((future, is_post))
        if position is not None:
            self._position = position
            self._dirty = True
        metrics.CHECKPOINT_LAG.labels(self.name).set(len(self._pending))

    def __len__(self) -> int:
        return len(self._pending)

    async def commit(self) -> None:
        async with self._lock:
            if self._failure is not None:
                raise self._failure
            batch, position, dirty = list(self._pending), self._position, self._dirty
            if batch:
                await asyncio.wait([future for future, _ in batch])  # unlike gather, never cancels the sends
            for future, _ in batch:
                if future.exception() is not None:
                    self._failure = future.exception()
                    raise self._failure
            del self._pending[: len(batch)]
            posts = sum(1 for _, is_post in batch if is_post)
            metrics.POSTS_PRODUCED.labels(self.name).inc(posts)
            metrics.DEAD_LETTERS.labels(self.name).inc(len(batch) - posts)
            if dirty:
                self.store.save(position)
                self._dirty = self._position is not position
                metrics.CHECKPOINT_SAVED.labels(self.name).set(time.time())
            metrics.CHECKPOINT_LAG.labels(self.name).set(len(self._pending))


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
        checkpoint_interval_s: float = 1.0,
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

    async def _commit_periodically(self, committer: _Committer) -> None:
        while True:
            await asyncio.sleep(self._checkpoint_interval_s)
            await committer.commit()

    async def _send(self, sink: KafkaSink, emit: Emit, stats: RunStats) -> asyncio.Future | None:
        if emit.post is not None:
            waited = await self._post_bucket.acquire()
            if waited:
                metrics.RATE_LIMIT_WAIT.labels(self.name).inc(waited)
            stats.posts += 1
            return await sink.send_post(emit.post)
        if emit.dead_letter is not None:
            stats.dead_letters += 1
            return await sink.send_dead_letter(emit.dead_letter)
        return None

    async def run(self) -> RunStats:
        """Produce until the source ends (files, `once` polls) or the task is cancelled."""
        stats = RunStats()
        committer = _Committer(self.name, self.checkpoints)
        async with KafkaSink(self.settings, self.name) as sink:
            ticker = asyncio.create_task(self._commit_periodically(committer))
            try:
                async with contextlib.aclosing(self.stream(self.checkpoints.load())) as emits:
                    async for emit in emits:
                        committer.add(await self._send(sink, emit, stats), emit.post is not None, emit.position)
                        if len(committer) >= self._checkpoint_every:
                            await committer.commit()
            finally:
                ticker.cancel()
                await asyncio.gather(ticker, return_exceptions=True)
                await committer.commit()
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
