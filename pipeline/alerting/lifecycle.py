"""Alert lifecycle: one crisis → one alert that is opened, updated, then resolved.

Detectors fire on every anomalous window; forwarding that would flood analysts. This state
machine adds hysteresis (an alert opens when a detector fires but stays open while the score
is merely above `keep_score`), periodic/escalation updates, resolution after `resolve_after`
quiet windows, and a cooldown that stops the same (watch, key) from re-opening right away.
Alert ids hash (watch, key, opening window start), so a replay of the same posts produces the
same ids and a consumer can de-duplicate.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any, Literal

Severity = Literal["info", "warning", "critical"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}
TransitionState = Literal["open", "updated", "resolved"]


def severity_for(
    score: float,
    observed: float,
    baseline: float | None,
    warning_score: float,
    critical_score: float,
    warning_ratio: float,
    critical_ratio: float,
) -> Severity:
    """The higher of the score-based and the observed/baseline-ratio-based severity."""
    ratio = observed / max(baseline, 1.0) if baseline is not None else 0.0
    if score >= critical_score or ratio >= critical_ratio:
        return "critical"
    if score >= warning_score or ratio >= warning_ratio:
        return "warning"
    return "info"


def alert_id(watch: str, key: str, opened_window_start: int) -> str:
    return hashlib.sha1(f"{watch}\x1f{key}\x1f{opened_window_start}".encode()).hexdigest()[:20]


@dataclass(frozen=True)
class WindowResult:
    """What the detectors concluded about one closed window of one (watch, key)."""

    watch: str
    key: str
    window_start: int
    window_end: int
    fires: bool
    score: float
    severity: Severity
    observed: int
    baseline: float | None
    negative_share: float
    baseline_negative_share: float | None
    sample_post_ids: tuple[str, ...] = ()
    sample_texts: tuple[str, ...] = ()
    top_terms: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class AlertTransition:
    alert_id: str
    state: TransitionState
    severity: Severity
    """Peak severity of the alert so far."""
    opened_at: int
    updated_at: int
    window: WindowResult


@dataclass
class AlertLifecycle:
    """Lifecycle of the alert of one (watch, key); all fields are its serialisable state."""

    keep_score: float = 0.3
    resolve_after: int = 3
    update_every: int = 6
    cooldown: int = 6 * 3600
    alert_id: str | None = None
    opened_at: int | None = None
    severity: Severity | None = None
    windows_since_update: int = 0
    quiet_windows: int = 0
    cooldown_until: int | None = None

    @property
    def is_open(self) -> bool:
        return self.alert_id is not None

    def step(self, result: WindowResult) -> AlertTransition | None:
        if not self.is_open:
            return self._maybe_open(result)
        quiet = not result.fires and result.score < self.keep_score
        if quiet:
            self.quiet_windows += 1
            if self.quiet_windows >= self.resolve_after:
                return self._resolve(result)
            return None
        self.quiet_windows = 0
        self.windows_since_update += 1
        escalated = SEVERITY_RANK[result.severity] > SEVERITY_RANK[self.severity or "info"]
        if escalated or self.windows_since_update >= self.update_every:
            if escalated:
                self.severity = result.severity
            self.windows_since_update = 0
            return self._transition("updated", result)
        return None

    def _maybe_open(self, result: WindowResult) -> AlertTransition | None:
        if not result.fires or (self.cooldown_until is not None and result.window_start < self.cooldown_until):
            return None
        self.alert_id = alert_id(result.watch, result.key, result.window_start)
        self.opened_at = result.window_end
        self.severity = result.severity
        self.windows_since_update = 0
        self.quiet_windows = 0
        return self._transition("open", result)

    def _resolve(self, result: WindowResult) -> AlertTransition:
        transition = self._transition("resolved", result)
        self.alert_id = self.opened_at = self.severity = None
        self.windows_since_update = self.quiet_windows = 0
        self.cooldown_until = result.window_end + self.cooldown
        return transition

    def _transition(self, state: TransitionState, result: WindowResult) -> AlertTransition:
        assert self.alert_id is not None and self.opened_at is not None and self.severity is not None
        return AlertTransition(self.alert_id, state, self.severity, self.opened_at, result.window_end, result)

    def to_state(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "AlertLifecycle":
        return cls(**state)
