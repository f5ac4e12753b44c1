"""The stages' work, as plain classes behind the `pipeline.batches.BatchStage` contract: a batch
of records in, outputs per topic and dead letters out. Testable without a broker or faust; the
runner (`pipeline.batches.StageRunner`) and the in-memory harness (`pipeline.harness`) run the
same objects.

A failure while handling one record costs that record only: it is dead-lettered as
``processing_error`` with the exception and where it was raised, and the batch goes on.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Protocol

import orjson

from pipeline.alerting import posts as alerted_posts
from pipeline.alerting.engine import AlertEngine
from pipeline.alerting.watches import Watch
from pipeline.analysis import Analyser, Reading
from pipeline.batches import Output, StageResult
from pipeline.contract import cloudevent_headers, cloudevent_source
from pipeline.models.enricher import Enrichment
from pipeline.schemas import (
    Alert,
    DeadLetter,
    EnrichedPost,
    Reason,
    Rejection,
    TimeRange,
    decode_message,
    decode_raw_post,
    view_of,
)
from pipeline.settings import Settings, Topics
from pipeline.sinks import DataRejected, metrics
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
class EnrichOutput:
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
    """posts.raw bytes -> validated posts, analysed (`pipeline.analysis`), or dead letters with a reason.

    The work runs in `prepare`, ahead: the next batch is enriched while this one's outputs are
    delivered."""

    name = label = "enrich"
    topic = Topics.RAW
    copartitioned = frozenset({Topics.ENRICHED})
    upstream = None

    def __init__(self, settings: Settings, analyser: Analyser):
        self.settings = settings
        self.analyser = analyser
        self.limits = settings.post_limits()
        self.duplicates = DuplicateCheck(settings.dedupe_capacity)
        self.max_records = settings.batch_size
        self.within_s = settings.batch_within_s

    def enrich(self, records: Sequence[RawRecord]) -> EnrichOutput:
        received_at = datetime.now(timezone.utc)
        started = time.monotonic()
        out = EnrichOutput()
        accepted: list[tuple[RawRecord, Reading]] = []
        for record in records:
            try:
                reading = self._read(record, out)
            except Exception as exc:  # a transform bug must cost one post, never the batch
                log.exception("reading %s:%d:%d failed", record.topic, record.partition, record.offset)
                out.dead.append(dead_letter_for(Rejection.of_exception(exc), record))
                continue
            if reading is not None:
                accepted.append((record, reading))

        deadline = started + self.settings.enrich_deadline_s  # the batch's one budget, on one clock
        results = self._classify_isolating(accepted, deadline, out)
        processed_at = datetime.now(timezone.utc)
        for (record, reading), result in results:
            try:
                out.enriched.append(self._build(reading, result, received_at, processed_at))
            except Exception as exc:
                out.dead.append(dead_letter_for(Rejection.of_exception(exc), record))
                continue
            out.lanes.append(record.partition)
        return out

    def _read(self, record: RawRecord, out: EnrichOutput) -> Reading | None:
        decoded = decode_raw_post(record.value, self.limits)
        if isinstance(decoded, Rejection):
            out.dead.append(dead_letter_for(decoded, record))
            return None
        if self.duplicates.is_duplicate(decoded.key, record):
            rejection = Rejection(reason=Reason.DUPLICATE_ID, detail=f"post {decoded.source}:{decoded.id} seen before")
            out.dead.append(dead_letter_for(rejection, record))
            return None
        return self.analyser.read(decoded)

    def _classify_isolating(
        self, accepted: list[tuple[RawRecord, Reading]], deadline: float, out: EnrichOutput
    ) -> list[tuple[tuple[RawRecord, Reading], Enrichment]]:
        """The models score a whole batch at once; should they raise, the batch is halved until
        the post they cannot take is alone, and only that one is dead-lettered. The halves keep
        the batch's deadline (a `time.monotonic()` instant)."""
        if not accepted:
            return []
        try:
            return list(zip(accepted, self.analyser.classify([reading for _, reading in accepted], deadline)))
        except Exception as exc:
            if len(accepted) == 1:
                log.exception("classifying %s failed", accepted[0][1].post.id)
                out.dead.append(dead_letter_for(Rejection.of_exception(exc), accepted[0][0]))
                return []
        half = len(accepted) // 2
        return self._classify_isolating(accepted[:half], deadline, out) + self._classify_isolating(accepted[half:], deadline, out)

    @staticmethod
    def _build(reading: Reading, result: Enrichment, received_at: datetime, processed_at: datetime) -> EnrichedPost:
        post, repost_of = reading.post, reading.repost_of
        return EnrichedPost(
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

    def prepare(self, records: Sequence[RawRecord]) -> StageResult:
        out = self.enrich(records)
        outputs = [
            Output(Topics.ENRICHED, post.key, post.encode(), post.created_at.timestamp(), lane)
            for post, lane in zip(out.enriched, out.lanes)
        ]
        return StageResult(outputs, out.dead, Counter(post.model_path for post in out.enriched))

    def process(self, prepared: StageResult) -> StageResult:
        return prepared

    def acknowledged(self, result: StageResult) -> None:
        for path, count in result.payload.items():
            metrics.MODEL_PATH.labels(path).inc(count)

    def idle(self, caught_up: frozenset[int]) -> None:
        return None

    def covered(self, partition: int) -> None:
        return None

    def reset(self, partition: int) -> None:
        """Nothing to forget: a reset partition's records are simply new posts (the duplicate
        check compares positions, and a reset topic's positions are new)."""


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
    received_at: list[datetime] = field(default_factory=list)


class StoreStage:
    """posts.enriched -> ClickHouse, the messages handed to the engine as they arrived.

    Python validates each message against the schema (msgspec, a few microseconds) and the
    engine checks every value again on insert (migration 005). When the engine refuses a batch
    for its data, the batch is split in halves until the refused messages are alone; they are
    dead-lettered with the engine's reason and the rest stored. Any other failure is raised: the
    batch is not committed and is retried. The two steps are separate (`prepare` = `check`,
    `process` = `insert`) so the worker checks the next batch while the engine inserts this one.
    """

    name, label = "store", "sink"
    topic = Topics.ENRICHED
    copartitioned = frozenset()
    upstream = None

    def __init__(self, store: PostStore, created_at: TimeRange, *, max_records: int = 20_000, within_s: float = 0.25):
        self.store = store
        self.created_at = created_at
        self.max_records = max_records
        self.within_s = within_s

    @classmethod
    def of(cls, settings: Settings, store: PostStore) -> "StoreStage":
        return cls(
            store, settings.created_at_range(), max_records=settings.store_batch_size, within_s=settings.store_within_s
        )

    def check(self, records: Sequence[RawRecord]) -> CheckedBatch:
        out = CheckedBatch()
        for record in records:
            try:
                post = decode_message(record.value, EnrichedPost)
                if not isinstance(post, Rejection):
                    post = self.created_at.refuse("created_at", post.created_at) or post
            except Exception as exc:
                post = Rejection.of_exception(exc)
            if isinstance(post, Rejection):
                out.dead.append(dead_letter_for(post, record))
                continue
            out.accepted.append(record)
            out.received_at.append(post.received_at)
        return out

    def insert(self, batch: CheckedBatch) -> StoreOutput:
        dead = list(batch.dead)
        return StoreOutput(self._insert_isolating(batch.accepted, dead), dead, batch.received_at)

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

    prepare = check

    def process(self, checked: CheckedBatch) -> StageResult:
        out = self.insert(checked)
        return StageResult(dead=out.dead, payload=out)

    def acknowledged(self, result: StageResult) -> None:
        out: StoreOutput = result.payload
        inserted = datetime.now(timezone.utc)
        for received_at, count in Counter(out.received_at).items():  # one time per enrich batch
            metrics.E2E_LATENCY_SECONDS.observe((inserted - received_at).total_seconds(), count)
        metrics.SINK_ROWS.labels("posts").inc(out.stored)

    def idle(self, caught_up: frozenset[int]) -> None:
        return None

    def covered(self, partition: int) -> None:
        return None

    def reset(self, partition: int) -> None:
        """Nothing to forget: rows are keyed by post, a re-read post replaces its row."""


class AlertStore(Protocol):
    """Where the alert engine's snapshots and alerts live (`ClickHouseSink` in the worker)."""

    def load_alert_state(self, namespace: str) -> tuple[int, bytes] | None: ...
    def save_alert_state(self, namespace: str, offset: int, state: bytes) -> None: ...
    def insert_alerts(self, alerts: Sequence[Alert]) -> int: ...


ALERTED_POST = view_of(EnrichedPost, alerted_posts.FIELDS)
"""What the alert engine reads of an enriched post, validated as in the schema."""

OBSERVATION_GAP_S = 5.0
"""Caught-up observations further apart than this (a paused worker, a broker away) start the
quiet time afresh: quiet is what was seen continuously, not what a stale clock suggests."""


class AlertStage:
    """posts.enriched -> alert transitions, with engine state that survives restarts exactly.

    One member reads every partition (`SingleOwnerAssignor`); each partition is a lane of the
    engine's event clock. After each batch the engine's state is saved with the offset it
    covers in each partition (in ClickHouse, the store every deployment has), after the batch's
    alerts were acknowledged by the broker and inserted (`acknowledged`): a snapshot never
    covers an alert that is not out. On start the newest snapshot is loaded and records at or
    below those offsets are skipped, so redelivered posts are never counted twice. Nothing here
    relies on the broker's ListOffsets.
    """

    name, label = "detect", "alerts"
    topic = Topics.ENRICHED
    copartitioned = frozenset()
    upstream = ("enrich", Topics.RAW)
    """Quiet means nothing left upstream either: posts.raw not yet enriched is data not read yet."""
    prepare = None  # the engine's state moves with every batch: nothing may run ahead of it

    def __init__(
        self,
        watches: Sequence[Watch],
        store: AlertStore,
        namespace: str,
        idle_flush_s: float,
        lanes: Sequence[str] = ("0",),
        *,
        created_at: TimeRange | None = None,
        max_records: int = 20_000,
        within_s: float = 0.2,
        event_source: str = cloudevent_source("pd-monitor"),
    ):
        """`event_source`: the CloudEvents `ce_source` of the alerts this deployment publishes."""
        self.store = store
        self.namespace = namespace
        self.event_source = event_source
        self.idle_flush_s = idle_flush_s
        self.created_at = created_at
        self.max_records = max_records
        self.within_s = within_s
        snapshot = orjson.loads(saved[1]) if (saved := store.load_alert_state(namespace)) else {}
        self.offsets: dict[int, int] = {int(p): offset for p, offset in snapshot.get("offsets", {}).items()}
        self.engine = AlertEngine(watches, state=snapshot.get("engine"), lanes=lanes)
        self.lanes = list(lanes)
        self._first_input: float | None = None
        self._caught_up_since: dict[str, float] = {}
        self._observed_at: dict[str, float] = {}

    @classmethod
    def of(cls, settings: Settings, watches: Sequence[Watch], store: AlertStore) -> "AlertStage":
        return cls(
            watches, store, settings.topic(Topics.ENRICHED), settings.alert_idle_flush_s,
            lanes=[str(partition) for partition in range(settings.topic_partitions)],
            created_at=settings.created_at_range(), max_records=settings.detect_batch_size,
            within_s=settings.batch_within_s, event_source=cloudevent_source(settings.app_id),
        )  # fmt: skip

    def detect(self, records: Sequence[RawRecord]) -> tuple[list[Alert], list[DeadLetter]]:
        alerts: list[Alert] = []
        dead: list[DeadLetter] = []
        for record in records:
            if record.offset <= self.offsets.get(record.partition, -1):
                continue  # already inside the restored snapshot
            lane = str(record.partition)
            self._caught_up_since.pop(lane, None)
            try:
                rejection = self._count(record, lane, alerts)
            except Exception as exc:  # a post the engine cannot take costs that post, not the stage
                log.exception("alerting on %s:%d:%d failed", record.topic, record.partition, record.offset)
                rejection = Rejection.of_exception(exc)
            if rejection is not None:
                dead.append(dead_letter_for(rejection, record))
            self.offsets[record.partition] = record.offset  # handled (counted or dead-lettered)
        if records and self._first_input is None:
            self._first_input = time.monotonic()
        return alerts, dead

    def _count(self, record: RawRecord, lane: str, alerts: list[Alert]) -> Rejection | None:
        post = decode_message(record.value, ALERTED_POST)
        if isinstance(post, Rejection):
            return post
        if self.created_at is not None and (refused := self.created_at.refuse("created_at", post.created_at)):
            return refused
        alerts.extend(Alert.from_payload(p) for p in self.engine.process(post, lane))
        return None

    def process(self, records: Sequence[RawRecord]) -> StageResult:
        alerts, dead = self.detect(records)
        return self._result(alerts, dead)

    def _result(self, alerts: list[Alert], dead: list[DeadLetter] = ()) -> StageResult:
        outputs = [
            Output(Topics.ALERTS, alert.id.encode(), alert.encode(), headers=cloudevent_headers(alert, self.event_source))
            for alert in alerts
        ]
        return StageResult(outputs, list(dead), alerts)

    def acknowledged(self, result: StageResult) -> None:
        """The batch's alerts are on the topic: into ClickHouse with them, then the snapshot that
        covers them (were it saved first, a failure in between would lose the alerts for good)."""
        alerts: list[Alert] = result.payload
        self.store.insert_alerts(alerts)
        self.save()
        for alert in alerts:
            metrics.ALERTS.labels(alert.state.value).inc()
        metrics.SINK_ROWS.labels("alerts").inc(len(alerts))

    def idle(self, caught_up: frozenset[int]) -> StageResult | None:
        """A quiet stream must still close its windows (and resolve its alerts).

        Quiet means no data, not data not read yet: a lane (source partition) counts as quiet
        once it has been seen caught up (`caught_up`: fetches found nothing past the position,
        and the enrich stage has read the lane's posts.raw partition to the end) without a
        break for `idle_flush_s`; only then does it stop holding event time back, and
        only when every lane is quiet does the engine go quiet (`AlertEngine.go_quiet`). During
        a rebalance, a catch-up or a pause nothing is known, and nothing moves.
        """
        alerts = self.advance_if_idle(caught_up)
        return self._result(alerts) if alerts else None

    def advance_if_idle(self, caught_up: frozenset[int]) -> list[Alert]:
        now = time.monotonic()
        for lane in self.lanes:
            if int(lane) not in caught_up:
                self._caught_up_since.pop(lane, None)
            elif lane not in self._caught_up_since or now - self._observed_at.get(lane, now) > OBSERVATION_GAP_S:
                self._caught_up_since[lane] = now
            self._observed_at[lane] = now
        quiet = sorted(lane for lane, since in self._caught_up_since.items() if now - since >= self.idle_flush_s)
        payloads = []
        if self._first_input is not None:
            # a lane is quiet only once the stream has begun: before that, lanes merely start
            # unevenly (one partition's batch may be enriched seconds before another's)
            payloads += self.engine.retire_lanes(quiet)
        if len(quiet) == len(self.lanes):
            payloads += self.engine.go_quiet(time.time())
        return [Alert.from_payload(p) for p in payloads]

    def covered(self, partition: int) -> int | None:
        offset = self.offsets.get(partition)
        return None if offset is None else offset + 1

    def reset(self, partition: int) -> None:
        """The partition's log was reset under the snapshot: its new records are new posts, not
        ones the snapshot already counted."""
        self.offsets.pop(partition, None)

    def save(self) -> None:
        """The `offset` column holds how many records the snapshot covers (for a person reading
        the table); the offsets per partition are in the state itself."""
        covered = sum(offset + 1 for offset in self.offsets.values())
        state = {"offsets": {str(p): offset for p, offset in self.offsets.items()}, "engine": self.engine.to_state()}
        self.store.save_alert_state(self.namespace, covered, orjson.dumps(state))
