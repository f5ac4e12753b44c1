"""Backtest of the forecasting model (`make bench-forecast`, part of `make bench`).

Rolling origins over three kinds of series, each aggregated to hours and to days:
- the NAB series of ``../shared/data/nab/`` and ``../shared/data/nab_corpus/`` (the five
  realTweets files are in both and are read once), averaged per hour / day (partial periods at
  either end dropped, an empty period carries the previous value);
- the bundled sample stream (`pipeline.samples`), generated over `SAMPLE_DAYS` days, enriched by the
  production enrich stage (lexical model), stored in chdb and read back with the refit's own
  queries (`pipeline.forecasting.series`): hourly and daily volume and negative share of every
  topic, mentioned country and watch key the refit forecasts.

At each origin the shipped model (`pipeline.forecasting.model.forecast`) and seasonal naive
forecast the next 24 hours (origins 24 h apart after 7 days of history) or the next 14 days
(origins 7 days apart after 28 days). MASE divides the mean absolute error by the in-sample mean
absolute seasonal difference (season 24 h / 7 days); a series whose scale is zero (a flat line,
a noiseless wave) has no MASE and is skipped. Coverage is the share of actual values inside the
80 % and 95 % intervals.

Each series' origins are split in time: the first half is the development part on which the
model's settings (ensemble size, backtest origins, interval widening per resolution) were chosen,
the second half is the test part reported in the README. Both are printed.

    python -m bench.forecast [--nab-only] [--sample-days 56]
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from pipeline.forecasting.model import DAILY, HOURLY, MODEL_NAME, Resolution, forecast, seasonal_naive

SHARED = next(
    (parent / "shared" / "data" for parent in Path(__file__).resolve().parents if (parent / "shared" / "data").is_dir()),
    Path("shared/data"),
)  # beside the repository's folder (or a worktree's)
NAB_ROOTS = (SHARED / "nab", SHARED / "nab_corpus")
MIN_HISTORY = {"hour": 7 * 24, "day": 28}
ORIGIN_STEP = {"hour": 24, "day": 7}
SAMPLE_DAYS = 56
SAMPLE_POSTS_PER_DAY = 200  # the density of `make run`'s sample (600 posts in 3 days)
_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class BenchSeries:
    group: str
    name: str
    values: np.ndarray


def _epoch(text: str) -> float:
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            continue
    raise ValueError(f"unrecognised NAB timestamp {text!r}")


def aggregate(times: np.ndarray, values: np.ndarray, period_s: int) -> np.ndarray:
    """Mean per period; the partial first and last periods are dropped, an empty one carries the previous value."""
    periods = (times // period_s).astype(np.int64)
    first, last = periods.min() + 1, periods.max() - 1
    if last < first:
        return np.empty(0)
    inside = (periods >= first) & (periods <= last)
    sums = np.zeros(last - first + 1)
    counts = np.zeros(last - first + 1)
    np.add.at(sums, periods[inside] - first, values[inside])
    np.add.at(counts, periods[inside] - first, 1)
    out = np.empty(len(sums))
    previous = values[inside][0]
    for i, (total, n) in enumerate(zip(sums, counts)):
        previous = out[i] = total / n if n else previous
    return out


def nab_series(resolution: Resolution) -> list[BenchSeries]:
    seen: dict[str, BenchSeries] = {}
    for root in NAB_ROOTS:
        for path in sorted(root.glob("*/*.csv")):
            name = f"{path.parent.name}/{path.name}"
            if name in seen:
                continue
            with path.open(newline="") as handle:
                rows = list(csv.DictReader(handle))
            times = np.array([_epoch(r["timestamp"]) for r in rows])
            values = np.array([float(r["value"]) for r in rows])
            seen[name] = BenchSeries(f"nab/{path.parent.name}", name, aggregate(times, values, resolution.seconds))
    return list(seen.values())


@dataclass
class Scores:
    """Per series and origin: MASE of the model and of seasonal naive, coverage of 80/95 %."""

    rows: dict[str, list[tuple[float, float, float, float]]]

    def summary(self) -> tuple[int, int, float, float, float, float]:
        per_series = [np.mean(r, axis=0) for r in self.rows.values() if r]
        forecasts = sum(len(r) for r in self.rows.values())
        all_rows = np.array([row for r in self.rows.values() for row in r])
        if not per_series:
            return 0, 0, float("nan"), float("nan"), float("nan"), float("nan")
        mase, naive = np.mean(per_series, axis=0)[:2]
        cover80, cover95 = all_rows[:, 2].mean(), all_rows[:, 3].mean()  # weights every forecast step alike
        return len(per_series), forecasts, mase, naive, cover80, cover95


def backtest(series: list[BenchSeries], resolution: Resolution, part: str) -> dict[str, Scores]:
    """`part` dev: the first half of each series' origins; test: the rest."""
    season, horizon = resolution.season, resolution.horizon
    by_group: dict[str, Scores] = defaultdict(lambda: Scores(defaultdict(list)))
    for s in series:
        y = s.values
        origins = list(range(MIN_HISTORY[resolution.name], len(y) - horizon + 1, ORIGIN_STEP[resolution.name]))
        half = len(origins) // 2
        for origin in origins[:half] if part == "dev" else origins[half:]:
            history, actual = y[:origin], y[origin : origin + horizon]
            scale = np.mean(np.abs(history[season:] - history[:-season]))
            if not scale > 1e-12:
                continue
            result = forecast(history, resolution)
            naive = seasonal_naive(history, season, horizon)
            by_group[s.group].rows[s.name].append((
                np.mean(np.abs(actual - result.mean)) / scale,
                np.mean(np.abs(actual - naive)) / scale,
                np.mean((actual >= result.lower_80) & (actual <= result.upper_80)),
                np.mean((actual >= result.lower_95) & (actual <= result.upper_95)),
            ))  # fmt: skip
    return dict(by_group)


def print_table(title: str, scores: dict[str, Scores]) -> None:
    print(f"\n{title}")
    header = f"{'group':34s} {'series':>6s} {'fcasts':>6s} {'MASE':>6s} {'snaive':>6s} {'ratio':>6s} {'cov80':>6s} {'cov95':>6s}"
    print(header)
    pooled: dict[str, Scores] = defaultdict(lambda: Scores({}))
    for group, group_scores in scores.items():
        pooled[group.split("/")[0] + " (all)"].rows.update(group_scores.rows)
    for group in [*sorted(scores), *sorted(pooled)]:
        n, forecasts, mase, naive, c80, c95 = (scores.get(group) or pooled[group]).summary()
        if n:
            print(f"{group:34s} {n:6d} {forecasts:6d} {mase:6.3f} {naive:6.3f} {mase / naive:6.3f} {c80:6.1%} {c95:6.1%}")


def sample_posts(days: int, per_day: int):
    """The bundled sample generator over `days` days ending where the bundled timeline ends
    (its Hong Kong surge is on the last day), `per_day` posts a day."""
    import dataclasses

    from pipeline.samples.generate import Templates, sample_stream

    templates = Templates.load()
    timeline = dataclasses.replace(templates.timeline, start=templates.timeline.end - timedelta(days=days))
    longer = dataclasses.replace(templates, timeline=timeline)
    return [item.post for item in sample_stream(seed=7, count=days * per_day, templates=longer)]


def sample_series(days: int, per_day: int) -> dict[str, list[BenchSeries]]:
    """Hourly and daily volume / negative share of every series a refit would forecast on the
    sample, read from chdb with the refit's queries after the production enrich and store stages.
    (Imported here: `--nab-only` needs numpy alone, so it also runs beside other forecasting packages.)"""
    from pipeline.alerting.watches import load_watches
    from pipeline.forecasting import series as queries
    from pipeline.forecasting.model import RESOLUTIONS
    from pipeline.settings import Settings
    from pipeline.sinks.clickhouse import ClickHouseSink, connect, migrate
    from pipeline.stages import EnrichStage, RawRecord
    from pipeline.worker import load_analyser

    settings = Settings(enricher="lexical")
    stage = EnrichStage(settings, load_analyser(settings))
    raw = sample_posts(days, per_day)
    with tempfile.TemporaryDirectory() as tmp:
        client = connect(f"chdb://{tmp}/chdb")
        migrate(client, "bench", ttl_days=3650)
        sink = ClickHouseSink(client, "bench")
        for i in range(0, len(raw), 4096):
            records = [RawRecord(post.encode(), "posts.raw", 0, i + j) for j, post in enumerate(raw[i : i + 4096])]
            sink.insert_posts(stage.enrich(records).enriched)
        first, newest = queries.data_span(sink.query, "bench")
        watches = load_watches(settings.watches_dir)
        out: dict[str, list[BenchSeries]] = {}
        for name, resolution in RESOLUTIONS.items():
            origin = queries.period_floor(newest, resolution) + timedelta(seconds=resolution.seconds)  # all is history
            start = queries.grid_start(first, origin, resolution)
            counts = queries.overall_counts(sink.query, "bench", resolution, start, origin)
            counts |= queries.watch_counts(sink.query, "bench", watches, resolution, start, origin)
            out[name] = [
                BenchSeries(f"sample/{metric}", f"{watch or '*'}/{key}/{metric}", values)
                for (watch, key), c in counts.items()
                for metric, values in (("volume", c.posts), ("negative_share", c.negative_share()))
            ]
        sink.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nab-only", action="store_true", help="skip the sample stream")
    parser.add_argument("--sample-days", type=int, default=SAMPLE_DAYS)
    parser.add_argument("--sample-posts-per-day", type=int, default=SAMPLE_POSTS_PER_DAY)
    args = parser.parse_args(argv)
    started = time.monotonic()
    sample = {} if args.nab_only else sample_series(args.sample_days, args.sample_posts_per_day)
    print(f"model {MODEL_NAME}; origins: hourly every {ORIGIN_STEP['hour']} h after {MIN_HISTORY['hour']} h, "
          f"daily every {ORIGIN_STEP['day']} d after {MIN_HISTORY['day']} d; dev = first half of each series' origins")  # fmt: skip
    for resolution in (HOURLY, DAILY):
        series = nab_series(resolution) + sample.get(resolution.name, [])
        for part in ("dev", "test"):
            title = f"{resolution.name}ly, horizon {resolution.horizon}, {part} part"
            print_table(title.replace("dayly", "daily"), backtest(series, resolution, part))
    print(f"\n{time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
