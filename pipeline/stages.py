"""The per-batch work of each agent, as plain classes: testable without a broker or faust.

Agents in `pipeline.app` only move records between topics and call these.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Protocol

import orjson

from pipeline.alerting import posts as alerted_posts
from pipeline.alerting.engine import AlertEngine
from pipeline.alerting.watches import Watch
from pipeline.analysis import Analyser, Reading
from pipeline.schemas import (
    Alert,
    DeadLetter,
    EnrichedPost,
    Reason,
    Rejection,
    decode_message,
    decode_raw_post,
    view_of,
)
from pipeline.settings import Settings
from pipeline.sinks import DataRejected
from pipeline.transforms import ResultCache

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawRecord:
    """What a stage needs of a consumed Kafka record; aiokafka's `ConsumerRecord` has the same
    attributes and is passed as it is (no copy per record on the hot path)."""

    value: bytes
    topic: str
    partition: int
    offset: int
    key: bytes | None = None


@dataclass
class StageOutput:
    enriched: list[EnrichedPost] = field(default_factory=list)
    lanes: list[int] = field(default_factory=list)
    """The input partition of each enriched post (posts.enriched is co-partitioned with posts.raw)."""
    dead: list[DeadLetter] = field(default_factory=list)


def dead_letter_for(rejection: Rejection, record: RawRecord) -> DeadLetter:
    return DeadLetter.of(rejection, record.value, record.topic, record.partition, record.offset)


class DuplicateCheck:
    """Tells a true duplicate (same post id at another offset) from a redelivery of the same record.

    A redelivery after a crash must be processed again (at-least-once); a second message with
    an id already seen (a producer's retry, or a bug) is not enriched twice: it goes to the
    dead-letter topic with reason duplicate_id, counted, while the first copy is stored.
    """

    def __init__(self, capacity: int):
        self._first_seen: ResultCache[bytes, tuple[str, int, int]] = ResultCache(capacity)

    def is_duplicate(self, key: bytes, record: RawRecord) -> bool:
        position = (record.topic, record.partition, record.offset)
        first = self._first_seen.get(key)
        if first is None:
            self._first_seen.put(key, position)
            return False
        return first != position


class EnrichStage:
    """posts.raw bytes -> validated posts, analysed (`pipeline.analysis`), or dead letters with a reason."""

    def __init__(self, settings: Settings, analyser: Analyser):
        self.settings = settings
        self.analyser = analyser
        self.duplicates = DuplicateCheck(settings.dedupe_capacity)

    def process(self, records: Sequence[RawRecord]) -> StageOutput:
        received_at = datetime.now(timezone.utc)
        started = time.monotonic()
        out = StageOutput()
        accepted: list[tuple[RawRecord, Reading]] = []
        for record in records:
            decoded = decode_raw_post(
                record.value, max_bytes=self.settings.max_message_bytes, max_text_chars=self.settings.max_text_chars
            )
            if isinstance(decoded, Rejection):
                out.dead.append(dead_letter_for(decoded, record))
                continue
            if self.duplicates.is_duplicate(decoded.key, record):
                rejection = Rejection(reason=Reason.DUPLICATE_ID, detail=f"post {decoded.source}:{decoded.id} seen before")
                out.dead.append(dead_letter_for(rejection, record))
                continue
            try:
                accepted.append((record, self.analyser.read(decoded)))
            except Exception as exc:  # a transform bug must cost one post, never the worker
                log.exception("reading %s failed", decoded.id)
                out.dead.append(dead_letter_for(Rejection(reason=Reason.PROCESSING_ERROR, detail=repr(exc)), record))

        deadline = started + self.settings.enrich_deadline_s  # the batch's one budget, on one clock
        results = self.analyser.classify([reading for _, reading in accepted], deadline)
        processed_at = datetime.now(timezone.utc)
        for (record, reading), result in zip(accepted, results):
            post, repost_of = reading.post, reading.repost_of
            enriched = EnrichedPost(
                id=post.id,
                source=post.source,
                account=post.account,
                author=post.author,
                title=post.title,
                url=post.url,
                created_at=post.created_at,
                text=post.text,
                **reading.norm.enriched_fields(),
                is_repost=repost_of is not None,
                repost_of=repost_of,
                topic=result.topic,
                secondary_topic=result.secondary_topic,
                topic_score=result.topic_score,
                sentiment_score=result.sentiment_score,
                sentiment_label=result.sentiment_label,
                model_path=result.model_path,
                metrics=post.metrics,
                received_at=received_at,
                processed_at=processed_at,
            )
            out.enriched.append(enriched)
            out.lanes.append(record.partition)
        return out


class PostStore(Protocol):
    """Where enriched posts go (`ClickHouseSink` in the worker)."""

    def insert_encoded_posts(self, messages: Sequence[bytes]) -> int:
        """Raises `DataRejected` when a message's values are refused, anything else when the store fails."""


@dataclass
class CheckedBatch:
    """A batch of posts.enriched records after validation, ready for the engine."""

    accepted: list[RawRecord] = field(default_factory=list)
    received_at: list[datetime] = field(default_factory=list)
    """When each accepted post reached posts.raw: for the end-to-end latency histogram."""
    dead: list[DeadLetter] = field(default_factory=list)


@dataclass
class StoreOutput:
    stored: int
    dead: list[DeadLetter]


class StoreStage:
    """posts.enriched -> ClickHouse, the messages handed to the engine as they arrived.

    Python validates each message against the schema (msgspec, a few microseconds) and the
    engine checks every value again on insert (migration 005). When the engine refuses a batch
    for its data, the batch is split in halves until the refused messages are alone; they are
    dead-lettered with the engine's reason and the rest stored. Any other failure is raised: the
    batch is not committed and is retried. The two steps are separate so the worker can check
    the next batch while the engine inserts this one.
    """

    def __init__(self, store: PostStore):
        self.store = store

    @staticmethod
    def check(records: Sequence[RawRecord]) -> CheckedBatch:
        out = CheckedBatch()
        for record in records:
            post = decode_message(record.value, EnrichedPost)
            if isinstance(post, Rejection):
                out.dead.append(dead_letter_for(post, record))
                continue
            out.accepted.append(record)
            out.received_at.append(post.received_at)
        return out

    def insert(self, batch: CheckedBatch) -> StoreOutput:
        dead = list(batch.dead)
        return StoreOutput(self._insert_isolating(batch.accepted, dead), dead)

    def _insert_isolating(self, records: list[RawRecord], dead: list[DeadLetter]) -> int:
        try:
            return self.store.insert_encoded_posts([record.value for record in records])
        except DataRejected as exc:
            if len(records) == 1:
                rejection = Rejection(reason=Reason.INVALID_VALUE, detail=f"refused by ClickHouse: {exc}")
                dead.append(dead_letter_for(rejection, records[0]))
                return 0
            half = len(records) // 2
            return self._insert_isolating(records[:half], dead) + self._insert_isolating(records[half:], dead)


class AlertStateStore(Protocol):
    """Where the alert engine's snapshots live (`ClickHouseSink` in the worker)."""

    def load_alert_state(self, namespace: str) -> tuple[int, bytes] | None: ...
    def save_alert_state(self, namespace: str, offset: int, state: bytes) -> None: ...


@dataclass
class AlertOutput:
    alerts: list[Alert] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)


ALERTED_POST = view_of(EnrichedPost, alerted_posts.FIELDS)
"""What the alert engine reads of an enriched post, validated as in the schema."""


class AlertStage:
    """posts.enriched -> alert transitions, with engine state that survives restarts exactly.

    One member reads every partition (`SingleOwnerAssignor`); each partition is a lane of the
    engine's event clock. After each batch the engine's state is saved with the offset it
    covers in each partition (in ClickHouse, the store every deployment has); on start the
    newest snapshot is loaded and records at or below those offsets are skipped, so redelivered
    posts are never counted twice. Nothing here relies on the broker's ListOffsets.
    """

    def __init__(
        self,
        watches: Sequence[Watch],
        store: AlertStateStore,
        namespace: str,
        idle_flush_s: float,
        lanes: Sequence[str] = ("0",),
    ):
        self.store = store
        self.namespace = namespace
        self.idle_flush_s = idle_flush_s
        snapshot = orjson.loads(saved[1]) if (saved := store.load_alert_state(namespace)) else {}
        self.offsets: dict[int, int] = {int(p): offset for p, offset in snapshot.get("offsets", {}).items()}
        self.engine = AlertEngine(watches, state=snapshot.get("engine"), lanes=lanes)
        self.lanes = list(lanes)
        self._last_input = time.monotonic()
        self._first_input: float | None = None
        self._lane_input: dict[str, float] = {}

    def process(self, records: Sequence[RawRecord]) -> AlertOutput:
        out = AlertOutput()
        for record in records:
            if record.offset <= self.offsets.get(record.partition, -1):
                continue  # already inside the restored snapshot
            self.offsets[record.partition] = record.offset
            post = decode_message(record.value, ALERTED_POST)
            if isinstance(post, Rejection):
                out.dead.append(dead_letter_for(post, record))
                continue
            lane = str(record.partition)
            self._lane_input[lane] = time.monotonic()
            try:
                payloads = self.engine.process(post, lane)
            except (TypeError, ValueError) as exc:  # a value alerting reads is unusable: one post lost, not the stage
                out.dead.append(dead_letter_for(Rejection(reason=Reason.WRONG_TYPE, detail=repr(exc)), record))
                continue
            out.alerts.extend(Alert.from_payload(p) for p in payloads)
        if records:
            self._last_input = time.monotonic()
            if self._first_input is None:
                self._first_input = self._last_input
        return out

    def advance_if_idle(self) -> list[Alert]:
        """A quiet stream must still close its windows (and resolve its alerts).

        A lane (source partition) without input for `idle_flush_s` stops holding event time back;
        when the whole stream is that quiet, the engine goes quiet (`AlertEngine.go_quiet`).
        """
        now = time.monotonic()
        payloads = []
        if self._first_input is not None:
            # a lane is quiet only once the stream has begun: before that, lanes merely start
            # unevenly (one partition's batch may be enriched seconds before another's)
            lanes = set(self.lanes) | self._lane_input.keys()
            quiet = [lane for lane in lanes if now - self._lane_input.get(lane, self._first_input) >= self.idle_flush_s]
            payloads += self.engine.retire_lanes(sorted(quiet))
        if now - self._last_input >= self.idle_flush_s:
            payloads += self.engine.go_quiet(time.time())
        return [Alert.from_payload(p) for p in payloads]

    def save(self) -> None:
        """The `offset` column holds how many records the snapshot covers (for a person reading
        the table); the offsets per partition are in the state itself."""
        covered = sum(offset + 1 for offset in self.offsets.values())
        state = {"offsets": {str(p): offset for p, offset in self.offsets.items()}, "engine": self.engine.to_state()}
        self.store.save_alert_state(self.namespace, covered, orjson.dumps(state))
