"""Event-time tumbling windows per (watch, key), closed by a watermark.

Posts arrive out of order (connectors poll at different rates), so a window is only closed
once the watermark — the largest event time seen minus the allowed lateness — has passed its
end; posts for an already closed window are counted as late and dropped. Every window of a
group is emitted, empty ones included, because the detectors must see the quiet periods too.
Everything depends only on the input order, never on wall-clock time, so a backtest over the
same posts reproduces the live windows exactly.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.alerting.terms import terms, top_terms

Group = tuple[str, str]
"""(watch name, key) — e.g. ("hk_mainland_tourists", "all") or ("topic_other", "country:RU")."""


def window_start(ts: float, size: int) -> int:
    """Start (epoch seconds, aligned to multiples of `size` since the epoch) of the window holding ts."""
    return int(math.floor(ts / size)) * size


def _rank(sample: tuple[float, int, str, str]) -> tuple[float, str]:
    return sample[0], sample[2]


@dataclass
class WindowStats:
    start: int
    end: int
    count: int = 0
    negative_count: int = 0
    sentiment_sum: float = 0.0
    samples: list[tuple[float, int, str, str]] = field(default_factory=list)
    """(sentiment, arrival number, post id, text): the most negative posts, lowest post id first on ties.

    Ties go by post id, not arrival, so a window's alert depends only on which posts it holds: a
    backtest that reads the posts in another order reproduces the live alert exactly."""
    term_counts: Counter[str] = field(default_factory=Counter)

    def add(
        self,
        seq: int,
        post_id: str,
        text: str,
        sentiment: float,
        negative: bool,
        max_samples: int,
        content_terms: Sequence[str],
    ) -> None:
        self.count += 1
        self.negative_count += int(negative)
        self.sentiment_sum += sentiment
        self.term_counts.update(content_terms)
        samples = self.samples
        if max_samples and (len(samples) < max_samples or (sentiment, post_id) < _rank(samples[-1])):
            bisect.insort(samples, (sentiment, seq, post_id, text), key=_rank)  # stays sorted: no sort per post
            del samples[max_samples:]

    @property
    def negative_share(self) -> float:
        return self.negative_count / self.count if self.count else 0.0

    @property
    def mean_sentiment(self) -> float:
        return self.sentiment_sum / self.count if self.count else 0.0

    @property
    def sample_post_ids(self) -> list[str]:
        return [sample[2] for sample in self.samples]

    @property
    def sample_texts(self) -> list[str]:
        return [sample[3] for sample in self.samples]

    def top_terms(self, limit: int = 10) -> list[tuple[str, int]]:
        return top_terms(self.term_counts, limit)

    def to_state(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "count": self.count,
            "negative_count": self.negative_count,
            "sentiment_sum": self.sentiment_sum,
            "samples": [list(sample) for sample in self.samples],
            "term_counts": dict(self.term_counts),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "WindowStats":
        return cls(
            start=state["start"],
            end=state["end"],
            count=state["count"],
            negative_count=state["negative_count"],
            sentiment_sum=state["sentiment_sum"],
            samples=[tuple(sample) for sample in state["samples"]],  # type: ignore[misc]
            term_counts=Counter(state["term_counts"]),
        )


@dataclass(frozen=True)
class ClosedWindow:
    group: Group
    stats: WindowStats


class EventClock:
    """Event time across input lanes (the partitions a post stream is merged from).

    A consumer can read one partition far ahead of another, so the newest post overall says
    little about what is still to come. The clock's `low` is the minimum over the lanes of their
    newest event time — a lane read ahead cannot make the others' posts late. A lane known to be
    quiet is retired (it no longer holds time back) until it delivers again; `advance` sets a
    floor when the whole stream is quiet. With one lane this is simply the newest event time.
    """

    def __init__(self, lanes: Sequence[str] = ("0",)):
        self.lanes = list(lanes)
        self.newest: dict[str, float] = {}
        self.retired: set[str] = set()
        self.floor: float | None = None

    def observe(self, ts: float, lane: str = "0") -> None:
        if lane not in self.lanes:
            self.lanes.append(lane)
        self.newest[lane] = max(self.newest.get(lane, -math.inf), ts)
        self.retired.discard(lane)

    def retire(self, lane: str) -> None:
        self.retired.add(lane)

    def advance(self, ts: float) -> None:
        self.floor = ts if self.floor is None else max(self.floor, ts)

    @property
    def newest_overall(self) -> float | None:
        return max(self.newest.values(), default=None)

    @property
    def low(self) -> float | None:
        active = [self.newest.get(lane, -math.inf) for lane in self.lanes if lane not in self.retired]
        low = min(active) if active else max(self.newest.values(), default=-math.inf)
        if self.floor is not None:
            low = max(low, self.floor)
        return None if low == -math.inf else low

    def to_state(self) -> dict[str, Any]:
        return {"newest": dict(self.newest), "retired": sorted(self.retired), "floor": self.floor}

    @classmethod
    def from_state(cls, state: dict[str, Any], lanes: Sequence[str]) -> "EventClock":
        clock = cls(lanes)
        for lane, ts in state["newest"].items():
            clock.observe(ts, lane)
        clock.retired = set(state["retired"])
        clock.floor = state["floor"]
        return clock


class TumblingWindows:
    """All open windows of one watch (one window size / lateness), keyed by group."""

    def __init__(self, size: int, allowed_lateness: int, max_samples: int = 5):
        if size <= 0 or allowed_lateness < 0:
            raise ValueError("window size must be > 0 and allowed lateness >= 0")
        self.size = size
        self.allowed_lateness = allowed_lateness
        self.max_samples = max_samples
        self.max_event_time: float | None = None
        self.late_dropped = 0
        self._seq = 0
        self._next_start: dict[Group, int] = {}
        """Per group, the first window not yet emitted; absent until the group's first close."""
        self._open: dict[Group, dict[int, WindowStats]] = {}
        self._close_due = math.inf
        """No window closes before the watermark reaches this (the earliest end of any group's next
        window): most posts close nothing, and skip the walk over every group."""

    @property
    def watermark(self) -> float:
        return -math.inf if self.max_event_time is None else self.max_event_time - self.allowed_lateness

    def observe(self, ts: float) -> None:
        """Advance event time (the `EventClock`'s low point); call for every post, so quiet watches still close."""
        if self.max_event_time is None or ts > self.max_event_time:
            self.max_event_time = ts

    def add(
        self,
        group: Group,
        ts: float,
        post_id: str,
        text: str,
        sentiment: float,
        negative: bool,
        content_terms: Sequence[str] | None = None,
    ) -> bool:
        """Count a post in its window; False (and counted in `late_dropped`) if that window is closed.
        `text` is kept as a sample; top terms are `content_terms` (of the normalised text, computed
        once per post by the caller), else those of `text`.
        Event time is the caller's to advance (`observe`), so a post read early cannot close windows."""
        start = window_start(ts, self.size)
        if start + self.size <= self.watermark or start < self._next_start.get(group, start):
            self.late_dropped += 1
            return False
        windows = self._open.setdefault(group, {})
        stats = windows.get(start)
        if stats is None:
            stats = windows[start] = WindowStats(start, start + self.size)
        self._seq += 1
        if content_terms is None:
            content_terms = terms(text)
        stats.add(self._seq, post_id, text, sentiment, negative, self.max_samples, content_terms)
        self._close_due = min(self._close_due, start + self.size)
        return True

    def close_ready(self) -> list[ClosedWindow]:
        """Windows whose end the watermark has passed, gaps filled with empty windows, in
        (start, group) order."""
        if self.watermark < self._close_due:
            return []
        return self._close(lambda start: start + self.size <= self.watermark)

    def flush(self) -> list[ClosedWindow]:
        """Close every window up to the last one holding a post (end of a backtest)."""
        last = max((max(w) for w in self._open.values() if w), default=None)
        if last is None:
            return []
        return self._close(lambda start: start <= last)

    def _close(self, closable: Any) -> list[ClosedWindow]:
        closed: list[ClosedWindow] = []
        for group in sorted(self._open):
            windows = self._open[group]
            first = self._next_start.get(group, min(windows, default=None))
            if first is None:
                continue
            start = first
            while closable(start):
                stats = windows.pop(start, None) or WindowStats(start, start + self.size)
                closed.append(ClosedWindow(group, stats))
                start += self.size
            if start != first:
                self._next_start[group] = start
        closed.sort(key=lambda window: (window.stats.start, window.group))
        self._update_close_due()
        return closed

    def _update_close_due(self) -> None:
        firsts = (self._next_start.get(group, min(windows, default=math.inf)) for group, windows in self._open.items())
        self._close_due = min(firsts, default=math.inf) + self.size

    def to_state(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "allowed_lateness": self.allowed_lateness,
            "max_samples": self.max_samples,
            "max_event_time": self.max_event_time,
            "late_dropped": self.late_dropped,
            "seq": self._seq,
            "groups": [
                {
                    "group": list(group),
                    "next_start": self._next_start.get(group),
                    "open": [stats.to_state() for _, stats in sorted(self._open[group].items())],
                }
                for group in sorted(self._open)
            ],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "TumblingWindows":
        windows = cls(state["size"], state["allowed_lateness"], state["max_samples"])
        windows.max_event_time = state["max_event_time"]
        windows.late_dropped = state["late_dropped"]
        windows._seq = state["seq"]
        for entry in state["groups"]:
            group = (entry["group"][0], entry["group"][1])
            if entry["next_start"] is not None:
                windows._next_start[group] = entry["next_start"]
            windows._open[group] = {s["start"]: WindowStats.from_state(s) for s in entry["open"]}
        windows._update_close_due()
        return windows
