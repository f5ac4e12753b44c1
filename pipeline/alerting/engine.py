"""Ties watches, windows, detectors and lifecycles together: posts in, alert payloads out.

The faust agent and the backtest both feed enriched posts to `AlertEngine.process` (and call
`advance` on a timer / `flush` at the end of a replay); there is no other alerting logic, so
live alerts and backtest alerts are produced by the same code from the same order of posts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.alerting import posts
from pipeline.alerting.detectors import (
    AdaptiveBaseline,
    Cusum,
    Detection,
    Detector,
    ShareSurge,
    StaticThreshold,
    detector_from_state,
)
from pipeline.alerting.lifecycle import AlertLifecycle, AlertTransition, WindowResult, severity_for
from pipeline.alerting.payload import build_alert
from pipeline.alerting.terms import terms
from pipeline.alerting.watches import Rules, Watch
from pipeline.alerting.windows import ClosedWindow, EventClock, Group, TumblingWindows


QUIET_EVENT_TIME_S = 86_400.0
"""How far past the newest post a quiet stream's event time may move (see `AlertEngine.go_quiet`)."""


def build_detectors(rules: Rules) -> dict[str, Detector]:
    """Detectors a watch's rules ask for, keyed by role (volume / negative / static_*)."""
    detectors: dict[str, Detector] = {}
    volume = rules.volume_surge
    if volume.enabled and volume.method == "cusum":
        detectors["volume"] = Cusum(
            alpha=volume.alpha,
            drift=volume.cusum_drift,
            threshold=volume.cusum_threshold,
            warmup=volume.warmup,
            min_count=volume.min_count,
        )
    elif volume.enabled:
        detectors["volume"] = AdaptiveBaseline(
            method=volume.method,
            alpha=volume.alpha,
            history=volume.history,
            z_threshold=volume.z_threshold,
            warmup=volume.warmup,
            min_count=volume.min_count,
            seasonal=volume.seasonal,
        )
    negative = rules.negative_surge
    if negative.enabled:
        detectors["negative"] = ShareSurge(
            alpha=negative.alpha,
            z_threshold=negative.z_threshold,
            warmup=negative.warmup,
            min_count=negative.min_count,
            min_share=negative.min_share,
        )
    if rules.static.min_count is not None:
        detectors["static_volume"] = StaticThreshold(rules.static.min_count)
    if rules.static.negative_share is not None:
        detectors["static_negative"] = StaticThreshold(rules.static.negative_share)
    return detectors


@dataclass
class GroupState:
    """Learned state of one (watch, key): its detectors and its alert lifecycle."""

    detectors: dict[str, Detector]
    lifecycle: AlertLifecycle

    def to_state(self) -> dict[str, Any]:
        return {
            "detectors": {role: detector.to_state() for role, detector in self.detectors.items()},
            "lifecycle": self.lifecycle.to_state(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "GroupState":
        return cls(
            {role: detector_from_state(s) for role, s in state["detectors"].items()},
            AlertLifecycle.from_state(state["lifecycle"]),
        )


def evaluate_window(watch: Watch, window: ClosedWindow, detectors: dict[str, Detector]) -> WindowResult:
    """Run (and train) every detector of the group on one closed window."""
    stats, rules = window.stats, watch.rules
    detections: dict[str, Detection] = {}
    if "volume" in detectors:
        detections["volume"] = detectors["volume"].update(stats.count, ts=stats.start)
    if "negative" in detectors:
        detections["negative"] = detectors["negative"].update(stats.negative_share, ts=stats.start, count=stats.count)
    if "static_volume" in detectors:
        detections["static_volume"] = detectors["static_volume"].update(stats.count)
    if "static_negative" in detectors and stats.count >= rules.static.negative_min_count:
        detections["static_negative"] = detectors["static_negative"].update(stats.negative_share)
    score = max((d.score for d in detections.values()), default=0.0)
    baseline = detections["volume"].expected if "volume" in detections else None
    severity = rules.severity
    return WindowResult(
        watch=watch.name,
        key=window.group[1],
        window_start=stats.start,
        window_end=stats.end,
        fires=any(d.fires for d in detections.values()),
        score=score,
        severity=severity_for(
            score,
            stats.count,
            baseline,
            severity.warning_score,
            severity.critical_score,
            severity.warning_ratio,
            severity.critical_ratio,
        ),
        observed=stats.count,
        baseline=baseline,
        negative_share=stats.negative_share,
        baseline_negative_share=detections["negative"].expected if "negative" in detections else None,
        sample_post_ids=tuple(stats.sample_post_ids),
        sample_texts=tuple(stats.sample_texts),
        top_terms=tuple(stats.top_terms(10)),
    )


def _config_hash(watch: Watch) -> str:
    return hashlib.sha1(watch.config.model_dump_json().encode()).hexdigest()


class CountedPost:
    """What a window keeps of a post, read once per post for all the watches that count it; its
    terms are computed only if some watch does."""

    __slots__ = ("post_id", "text", "sentiment", "negative", "_post", "_terms")

    def __init__(self, post: Any):
        self.post_id = str(posts.field(post, "id", ""))
        self.text = str(posts.field(post, "text", ""))
        self.sentiment = posts.sentiment(post)
        self.negative = posts.is_negative(post)
        self._post = post
        self._terms: list[str] | None = None

    def terms(self) -> list[str]:
        if self._terms is None:
            self._terms = terms(posts.text(self._post))
        return self._terms


@dataclass
class WatchMonitor:
    """Windows and per-group state of one watch."""

    watch: Watch
    windows: TumblingWindows
    groups: dict[Group, GroupState] = field(default_factory=dict)

    @classmethod
    def fresh(cls, watch: Watch) -> "WatchMonitor":
        rules = watch.rules
        return cls(watch, TumblingWindows(rules.window, rules.allowed_lateness, rules.max_samples))

    def observe(
        self, post: Any, ts: float, now: float | None, counted: CountedPost
    ) -> list[AlertTransition]:
        """Count `post` (event time `ts`) and close what event time `now` (the clock's low) allows.
        `counted` holds what a window keeps of the post, read once for all watches."""
        if now is not None:
            self.windows.observe(now)
        if self.watch.matches(post):
            for key in self.watch.keys_for(post):
                self.windows.add(
                    (self.watch.name, key),
                    ts,
                    counted.post_id,
                    counted.text,
                    counted.sentiment,
                    counted.negative,
                    content_terms=counted.terms(),
                )
        return self._evaluate(self.windows.close_ready())

    def advance(self, ts: float) -> list[AlertTransition]:
        self.windows.observe(ts)
        return self._evaluate(self.windows.close_ready())

    def flush(self) -> list[AlertTransition]:
        return self._evaluate(self.windows.flush())

    def _evaluate(self, closed: Iterable[ClosedWindow]) -> list[AlertTransition]:
        transitions: list[AlertTransition] = []
        for window in closed:
            state = self.groups.get(window.group)
            if state is None:
                state = self.groups[window.group] = self._new_group_state()
            transition = state.lifecycle.step(evaluate_window(self.watch, window, state.detectors))
            if transition is not None:
                transitions.append(transition)
        return transitions

    def _new_group_state(self) -> GroupState:
        rules = self.watch.rules
        return GroupState(
            build_detectors(rules),
            AlertLifecycle(
                keep_score=rules.keep_score,
                resolve_after=rules.resolve_after,
                update_every=rules.update_every,
                cooldown=rules.cooldown,
            ),
        )

    def to_state(self) -> dict[str, Any]:
        return {
            "config_hash": _config_hash(self.watch),
            "windows": self.windows.to_state(),
            "groups": [{"group": list(g), **self.groups[g].to_state()} for g in sorted(self.groups)],
        }

    @classmethod
    def from_state(cls, watch: Watch, state: dict[str, Any]) -> "WatchMonitor":
        """Restore learned state; a watch whose rules changed since starts afresh instead."""
        if state.get("config_hash") != _config_hash(watch):
            return cls.fresh(watch)
        groups = {(g["group"][0], g["group"][1]): GroupState.from_state(g) for g in state["groups"]}
        return cls(watch, TumblingWindows.from_state(state["windows"]), groups)


class AlertEngine:
    """Posts in, alert payload dicts (for the `alerts` topic) out, in a deterministic order.

    `lanes` name the partitions the posts are merged from (one lane for a sorted backtest); the
    shared `EventClock` keeps a lane read ahead from making the others' posts late.
    """

    def __init__(self, watches: Iterable[Watch], state: dict[str, Any] | None = None, lanes: Sequence[str] = ("0",)):
        state = state or {"clock": None, "watches": {}}
        self.clock = EventClock.from_state(state["clock"], lanes) if state["clock"] else EventClock(lanes)
        saved = state["watches"]
        self.monitors = [
            WatchMonitor.from_state(w, saved[w.name]) if w.name in saved else WatchMonitor.fresh(w)
            for w in sorted(watches, key=lambda w: w.name)
        ]

    def process(self, post: Any, lane: str = "0") -> list[dict[str, Any]]:
        ts = posts.timestamp(post)
        self.clock.observe(ts, lane)
        now = self.clock.low
        counted = CountedPost(post)
        return self._payloads(monitor.observe(post, ts, now, counted) for monitor in self.monitors)

    def advance(self, ts: float) -> list[dict[str, Any]]:
        """Move event time forward without a post (e.g. a timer when the whole stream is idle)."""
        self.clock.advance(ts)
        return self._close_ready()

    def go_quiet(self, wall_time: float) -> list[dict[str, Any]]:
        """The whole stream is quiet: event time follows the wall clock, at most `QUIET_EVENT_TIME_S`
        past the newest post — a live stream keeps closing windows (and resolving alerts) as time
        passes; a replay of 2015 closes its open windows without emitting every empty hour since."""
        if self.max_event_time is None:
            return []
        target = min(wall_time, self.max_event_time + QUIET_EVENT_TIME_S)
        if self.clock.floor is not None and target <= self.clock.floor:
            return []
        return self.advance(target)

    def retire_lanes(self, lanes: Iterable[str]) -> list[dict[str, Any]]:
        """Stop waiting for lanes that have gone quiet; they rejoin with their next post."""
        for lane in lanes:
            self.clock.retire(lane)
        return self._close_ready()

    def _close_ready(self) -> list[dict[str, Any]]:
        now = self.clock.low
        if now is None:
            return []
        return self._payloads(monitor.advance(now) for monitor in self.monitors)

    @property
    def max_event_time(self) -> float | None:
        """The newest post seen on any lane."""
        return self.clock.newest_overall

    def flush(self) -> list[dict[str, Any]]:
        """Close all windows (end of a backtest)."""
        return self._payloads(monitor.flush() for monitor in self.monitors)

    @staticmethod
    def _payloads(batches: Iterable[list[AlertTransition]]) -> list[dict[str, Any]]:
        return [build_alert(transition) for batch in batches for transition in batch]

    @property
    def late_dropped(self) -> int:
        return sum(monitor.windows.late_dropped for monitor in self.monitors)

    def to_state(self) -> dict[str, Any]:
        return {
            "clock": self.clock.to_state(),
            "watches": {monitor.watch.name: monitor.to_state() for monitor in self.monitors},
        }
