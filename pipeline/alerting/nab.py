"""Numenta Anomaly Benchmark (NAB v1.1) scoring, implemented from its published rules.

Used to measure the alerting detectors on labelled real Twitter volume series. Rules, per file:
- the first 15% of rows (at most 750 = 15% of 5000) are probation and not scored;
- within a labelled window only the earliest detection counts, worth
  tpWeight * sigmoid(position) / sigmoid(-1), where position runs from -1 (window start) to ~0
  (window end) and sigmoid(y) = 2 / (1 + e^(5y)) - 1 — so earlier is better;
- a detection outside windows is a false positive costing fpWeight * sigmoid(distance past the
  previous window's end, in window widths) — i.e. up to -fpWeight, and exactly -fpWeight
  before the first window; a window without detection costs -fnWeight;
- corpus totals are normalised per profile: 100 * (raw - null) / (perfect - null), with the null
  detector (no detections) at 0 and perfect (= number of windows * tpWeight) at 100.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

PROBATION_PERCENT = 0.15
_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class CostMatrix:
    tp_weight: float
    fp_weight: float
    fn_weight: float


@dataclass(frozen=True)
class Series:
    name: str
    """Path relative to the corpus root, as used in the label files (e.g. realTweets/X.csv)."""
    timestamps: list[datetime]
    values: list[float]


@dataclass(frozen=True)
class FileScore:
    raw: float
    true_positives: int
    false_positives: int
    false_negatives: int
    windows: int


def parse_time(text: str) -> datetime:
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    raise ValueError(f"unrecognised NAB timestamp {text!r}")


def load_series(root: Path, name: str) -> Series:
    with (root / name).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return Series(name, [parse_time(r["timestamp"]) for r in rows], [float(r["value"]) for r in rows])


def load_windows(path: Path) -> dict[str, list[tuple[datetime, datetime]]]:
    data = json.loads(path.read_text())
    return {name: [(parse_time(a), parse_time(b)) for a, b in limits] for name, limits in data.items()}


def load_profiles(path: Path) -> dict[str, CostMatrix]:
    data = json.loads(path.read_text())
    return {
        name: CostMatrix(p["CostMatrix"]["tpWeight"], p["CostMatrix"]["fpWeight"], p["CostMatrix"]["fnWeight"])
        for name, p in data.items()
    }


def scaled_sigmoid(position: float) -> float:
    """2 / (1 + e^(5 * position)) - 1, and -1 from 3 window widths past a window on."""
    if position >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def probation_length(rows: int, percent: float = PROBATION_PERCENT) -> int:
    return int(min(math.floor(percent * rows), percent * 5000))


def window_labels(timestamps: Sequence[datetime], windows: Sequence[tuple[datetime, datetime]]) -> list[int]:
    """1 for rows inside a labelled window (the NAB results `label` column), else 0."""
    return [int(any(a <= ts <= b for a, b in windows)) for ts in timestamps]


def score_detections(
    timestamps: Sequence[datetime],
    detections: Sequence[bool],
    windows: Sequence[tuple[datetime, datetime]],
    cost: CostMatrix,
    probation_percent: float = PROBATION_PERCENT,
) -> FileScore:
    """Raw NAB score of one file's binary detections."""
    if len(timestamps) != len(detections):
        raise ValueError("one detection flag per row is required")
    index = {ts: i for i, ts in enumerate(timestamps)}
    spans = sorted((index[a], index[b]) for a, b in windows)
    probation = probation_length(len(timestamps), probation_percent)
    max_tp = scaled_sigmoid(-1.0)

    window_scores: dict[int, float] = {}  # window number -> best detection so far (or -fn)
    fp_total, fp_count = 0.0, 0
    span_number = 0
    previous: tuple[int, int] | None = None
    for i, detected in enumerate(detections):
        while span_number < len(spans) and spans[span_number][1] < i:
            previous = spans[span_number]
            span_number += 1
        inside = span_number < len(spans) and spans[span_number][0] <= i
        if i < probation:
            continue
        if inside:
            left, right = spans[span_number]
            window_scores.setdefault(span_number, -cost.fn_weight)
            if detected:
                position = -(right - i + 1) / (right - left + 1)
                tp = scaled_sigmoid(position) * cost.tp_weight / max_tp
                window_scores[span_number] = max(window_scores[span_number], tp)
        elif detected:
            if previous is None:
                position = 3.0
            else:
                left, right = previous
                position = abs(right - i) / max(right - left, 1)
            fp_total += scaled_sigmoid(position) * cost.fp_weight
            fp_count += 1
    hits = sum(1 for s in window_scores.values() if s > -cost.fn_weight)
    return FileScore(
        raw=sum(window_scores.values()) + fp_total,
        true_positives=hits,
        false_positives=fp_count,
        false_negatives=len(window_scores) - hits,
        windows=len(window_scores),
    )


def normalised_score(raw: float, null: float, perfect: float) -> float:
    return 100.0 * (raw - null) / (perfect - null)


def perfect_score(window_count: int, cost: CostMatrix) -> float:
    """NAB's perfect detector: every labelled window detected at its very first row."""
    return window_count * cost.tp_weight
