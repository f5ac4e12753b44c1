"""Streaming anomaly detectors for per-window counts and shares (river-style update/score).

The same detector objects run in the live agent, in backtests and in the NAB benchmark, so a
score measured offline is the score the alerting path produces. Each detector maps its own
statistic onto an anomaly score in [0, 1] that is exactly 0.5 at its firing threshold, which
lets the lifecycle compare scores of different detectors and lets NAB threshold them.

`update(x)` scores x against what was learned so far and then learns x; `score(x)` only
scores. State is plain data (`to_state()` / `detector_from_state()`) so the agent can persist it.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar

MAD_TO_STD = 1.4826
"""Scales the median absolute deviation to a standard deviation for normal data."""


@dataclass(frozen=True)
class Detection:
    score: float
    """Anomaly score in [0, 1]; 0.5 at the firing threshold."""
    fires: bool
    expected: float | None
    """Baseline the observation was compared against (None while there is none yet)."""
    statistic: float = 0.0
    """The raw statistic (z-score, CUSUM sum, or the value for a static threshold)."""


def squash(statistic: float, threshold: float) -> float:
    """Monotone map of a non-negative statistic onto [0, 1) with squash(threshold) == 0.5."""
    if statistic <= 0.0:
        return 0.0
    return statistic * statistic / (statistic * statistic + threshold * threshold)


@dataclass
class EwmaStats:
    """Exponentially weighted mean and variance (West's incremental form)."""

    mean: float = 0.0
    var: float = 0.0
    n: int = 0

    def update(self, x: float, alpha: float) -> None:
        if self.n == 0:
            self.mean, self.var = x, 0.0
        else:
            diff = x - self.mean
            increment = alpha * diff
            self.mean += increment
            self.var = (1.0 - alpha) * (self.var + diff * increment)
        self.n += 1


def _winsorised(x: float, alpha: float, bound: float, outlier_weight: float) -> tuple[float, float]:
    """An outlier is learned at the bound and with a reduced weight; other values unchanged."""
    if x > bound:
        return bound, alpha * outlier_weight
    return x, alpha


def _hour_of_day(ts: float | None) -> int:
    if ts is None:
        raise ValueError("a seasonal detector needs the window timestamp")
    return datetime.fromtimestamp(ts, tz=timezone.utc).hour


_REGISTRY: dict[str, type["Detector"]] = {}


class Detector(ABC):
    """Common interface; subclasses are dataclasses whose fields are their whole state."""

    kind: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.kind] = cls

    @abstractmethod
    def score(self, x: float, ts: float | None = None, count: int | None = None) -> Detection:
        """Score x without learning it."""

    @abstractmethod
    def learn(self, x: float, detection: Detection, ts: float | None = None, count: int | None = None) -> None:
        """Fold x into the learned state, given how it was scored."""

    def update(self, x: float, ts: float | None = None, count: int | None = None) -> Detection:
        detection = self.score(x, ts, count)
        self.learn(x, detection, ts, count)
        return detection

    def to_state(self) -> dict[str, Any]:
        return {"kind": self.kind, **dataclasses.asdict(self)}  # type: ignore[call-overload]

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "Detector":
        return cls._from_fields({k: v for k, v in state.items() if k != "kind"})

    @classmethod
    def _from_fields(cls, fields: dict[str, Any]) -> "Detector":
        return cls(**fields)


def detector_from_state(state: dict[str, Any]) -> Detector:
    return _REGISTRY[state["kind"]].from_state(state)


@dataclass
class StaticThreshold(Detector):
    """Fires when x >= threshold: the rule an analyst can state without any history."""

    kind: ClassVar[str] = "static"
    threshold: float

    def score(self, x: float, ts: float | None = None, count: int | None = None) -> Detection:
        return Detection(squash(x, self.threshold), x >= self.threshold, self.threshold, x)

    def learn(self, x: float, detection: Detection, ts: float | None = None, count: int | None = None) -> None:
        """A static rule learns nothing."""


@dataclass
class _Bucket:
    seen: int = 0
    ewma: EwmaStats = field(default_factory=EwmaStats)
    """Used by method="ewma"."""
    history: list[float] = field(default_factory=list)
    """Used by method="mad": the last `history` (winsorised) values."""


@dataclass
class AdaptiveBaseline(Detector):
    """One-sided z-score of a count against a learned baseline (surges only).

    `method="ewma"`: EWMA mean/variance; `method="mad"`: median and MAD of the last `history`
    values (robust to past spikes). `seasonal=True` keeps one baseline per UTC hour of day.
    The spread is floored by the Poisson noise sqrt(expected) and `min_std`, so a baseline of
    0-1 posts does not turn every 3-post window into a 10-sigma event. While a surge goes on,
    values above expected + clip_z * spread are learned winsorised at that bound and with
    (EWMA) `outlier_weight` times the usual weight, so the baseline does not chase the surge it should
    flag yet still absorbs a lasting level shift (about 1 / (alpha * outlier_weight) windows).
    """

    kind: ClassVar[str] = "adaptive"
    method: str = "ewma"
    alpha: float = 0.1
    history: int = 168
    z_threshold: float = 4.0
    warmup: int = 24
    min_count: float = 0.0
    seasonal: bool = False
    clip_z: float = 3.0
    outlier_weight: float = 0.1
    min_std: float = 1.0
    buckets: list[_Bucket] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.method not in ("ewma", "mad"):
            raise ValueError(f"unknown baseline method {self.method!r}")
        if not self.buckets:
            self.buckets = [_Bucket() for _ in range(24 if self.seasonal else 1)]

    @classmethod
    def _from_fields(cls, fields: dict[str, Any]) -> "Detector":
        buckets = [_Bucket(b["seen"], EwmaStats(**b["ewma"]), list(b["history"])) for b in fields.pop("buckets")]
        return cls(**fields, buckets=buckets)

    def _bucket(self, ts: float | None) -> _Bucket:
        return self.buckets[_hour_of_day(ts)] if self.seasonal else self.buckets[0]

    def _baseline(self, bucket: _Bucket) -> tuple[float, float]:
        if self.method == "ewma":
            expected, spread = bucket.ewma.mean, math.sqrt(bucket.ewma.var)
        else:
            expected = statistics.median(bucket.history)
            spread = MAD_TO_STD * statistics.median(abs(v - expected) for v in bucket.history)
        return expected, max(spread, math.sqrt(max(expected, 0.0)), self.min_std)

    def score(self, x: float, ts: float | None = None, count: int | None = None) -> Detection:
        bucket = self._bucket(ts)
        if bucket.seen < self.warmup:
            return Detection(0.0, False, None)
        expected, spread = self._baseline(bucket)
        z = (x - expected) / spread
        if x < self.min_count:
            return Detection(0.0, False, expected, z)
        return Detection(squash(z, self.z_threshold), z >= self.z_threshold, expected, z)

    def learn(self, x: float, detection: Detection, ts: float | None = None, count: int | None = None) -> None:
        bucket = self._bucket(ts)
        alpha = self.alpha
        if detection.expected is not None:
            expected, spread = self._baseline(bucket)
            x, alpha = _winsorised(x, alpha, expected + self.clip_z * spread, self.outlier_weight)
        bucket.seen += 1
        if self.method == "ewma":
            bucket.ewma.update(x, alpha)
        else:
            bucket.history.append(x)
            del bucket.history[: -self.history]


@dataclass
class Cusum(Detector):
    """One-sided (upper) CUSUM of standardised residuals against an EWMA baseline.

    Accumulates small, persistent excesses that a per-window z-score misses; the sum is capped
    at `cap * threshold` so the detector recovers within a few quiet windows after a surge.
    """

    kind: ClassVar[str] = "cusum"
    alpha: float = 0.1
    drift: float = 0.5
    threshold: float = 5.0
    warmup: int = 24
    min_count: float = 0.0
    clip_z: float = 3.0
    outlier_weight: float = 0.1
    min_std: float = 1.0
    cap: float = 2.0
    ewma: EwmaStats = field(default_factory=EwmaStats)
    total: float = 0.0

    @classmethod
    def _from_fields(cls, fields: dict[str, Any]) -> "Detector":
        return cls(**{**fields, "ewma": EwmaStats(**fields["ewma"])})

    def _spread(self) -> float:
        return max(math.sqrt(self.ewma.var), math.sqrt(max(self.ewma.mean, 0.0)), self.min_std)

    def score(self, x: float, ts: float | None = None, count: int | None = None) -> Detection:
        if self.ewma.n < self.warmup:
            return Detection(0.0, False, None)
        z = (x - self.ewma.mean) / self._spread()
        total = max(0.0, self.total + z - self.drift)
        if x < self.min_count:
            return Detection(0.0, False, self.ewma.mean, total)
        return Detection(squash(total, self.threshold), total >= self.threshold, self.ewma.mean, total)

    def learn(self, x: float, detection: Detection, ts: float | None = None, count: int | None = None) -> None:
        alpha = self.alpha
        if detection.expected is not None:
            self.total = min(detection.statistic, self.cap * self.threshold)
            x, alpha = _winsorised(x, alpha, self.ewma.mean + self.clip_z * self._spread(), self.outlier_weight)
        self.ewma.update(x, alpha)


@dataclass
class ShareSurge(Detector):
    """Surge of a share (e.g. negative posts / all posts) against its EWMA baseline.

    Windows with fewer than `min_count` posts are neither scored nor learned: 1 negative out of
    1 post is noise, not a crisis. The spread is floored by the binomial noise of the window's
    share so small windows need a larger jump to fire; `min_share` keeps a rise from 2% to 6%
    negative from alerting.
    """

    kind: ClassVar[str] = "share"
    alpha: float = 0.1
    z_threshold: float = 3.0
    warmup: int = 24
    min_count: int = 10
    min_share: float = 0.3
    clip_z: float = 3.0
    outlier_weight: float = 0.1
    min_std: float = 0.02
    ewma: EwmaStats = field(default_factory=EwmaStats)

    @classmethod
    def _from_fields(cls, fields: dict[str, Any]) -> "Detector":
        return cls(**{**fields, "ewma": EwmaStats(**fields["ewma"])})

    def _spread(self, count: int) -> float:
        p = min(max(self.ewma.mean, 0.0), 1.0)
        return max(math.sqrt(self.ewma.var), math.sqrt(p * (1.0 - p) / count), self.min_std)

    def score(self, x: float, ts: float | None = None, count: int | None = None) -> Detection:
        if count is None:
            raise ValueError("ShareSurge needs the window's post count")
        if count < self.min_count or self.ewma.n < self.warmup:
            return Detection(0.0, False, self.ewma.mean if self.ewma.n >= self.warmup else None)
        z = (x - self.ewma.mean) / self._spread(count)
        if x < self.min_share:
            return Detection(0.0, False, self.ewma.mean, z)
        return Detection(squash(z, self.z_threshold), z >= self.z_threshold, self.ewma.mean, z)

    def learn(self, x: float, detection: Detection, ts: float | None = None, count: int | None = None) -> None:
        if count is None or count < self.min_count:
            return
        alpha = self.alpha
        if detection.expected is not None:
            x, alpha = _winsorised(x, alpha, self.ewma.mean + self.clip_z * self._spread(count), self.outlier_weight)
        self.ewma.update(x, alpha)
