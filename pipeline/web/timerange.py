"""Query-string parameters of a dashboard view -> the bound parameters of `run_view`.

Times are Grafana-style so a polling page can keep asking for "the last six hours" without
computing timestamps: ``now``, ``now-15m`` (units s, m, h, d, w), an ISO 8601 instant or epoch
milliseconds. The bucket defaults to a round step giving about `TARGET_POINTS` points per series.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

DEFAULT_FROM = "now-6h"
DEFAULT_TO = "now"
TARGET_POINTS = 120
MAX_POINTS = 2000
MIN_BUCKET_S = 60  # the aggregates behind every time series are per minute
MAX_WATCH_CHARS = 200
NICE_BUCKETS_S = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 604800)

_RELATIVE = re.compile(r"^now(?:-(\d+)([smhdw]))?$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime
    bucket: int  # seconds


def parse_instant(text: str, now: datetime) -> datetime:
    """``now[-N<unit>]``, ISO 8601 (naive = UTC) or epoch milliseconds -> an aware UTC datetime."""
    text = text.strip()
    relative = _RELATIVE.match(text)
    if relative:
        amount, unit = relative.groups()
        return now - timedelta(seconds=int(amount) * _UNIT_S[unit]) if amount else now
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=timezone.utc)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a time: {text!r} (use now, now-6h, ISO 8601 or epoch ms)") from None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


def auto_bucket(span: timedelta, points: int = TARGET_POINTS) -> int:
    """The smallest round bucket that keeps a series at or under about `points` points."""
    wanted = span.total_seconds() / points
    return next((step for step in NICE_BUCKETS_S if step >= wanted), NICE_BUCKETS_S[-1])


def parse_time_range(args: Mapping[str, str], now: datetime) -> TimeRange:
    """``from``/``to``/``bucket`` (or ``points``) query arguments -> a validated range.

    Without ``bucket`` the step is a round one giving about ``points`` points (default
    `TARGET_POINTS`). A bucket finer than one minute or than `MAX_POINTS` per range is raised to
    that floor, so a careless URL cannot make the database return a point per second of a month.
    Raises ValueError on bad input.
    """
    start = parse_instant(args.get("from", DEFAULT_FROM), now)
    end = parse_instant(args.get("to", DEFAULT_TO), now)
    if end <= start:
        raise ValueError(f"empty range: from {start.isoformat()} is not before to {end.isoformat()}")
    span = end - start
    raw_bucket = args.get("bucket", "")
    if raw_bucket:
        floor = max(MIN_BUCKET_S, int(span.total_seconds() // MAX_POINTS) + 1)
        return TimeRange(start, end, max(_positive_int(raw_bucket, "bucket"), floor))
    points = min(_positive_int(args.get("points", str(TARGET_POINTS)), "points"), MAX_POINTS)
    return TimeRange(start, end, auto_bucket(span, points))


def _positive_int(text: str, name: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise ValueError(f"{name} must be a positive integer, got {text!r}")
    return int(text)


def parse_watch(args: Mapping[str, str]) -> str:
    watch = args.get("watch", "").strip()
    if not watch:
        raise ValueError("this view needs ?watch=<watch name>")
    if len(watch) > MAX_WATCH_CHARS:
        raise ValueError(f"watch name longer than {MAX_WATCH_CHARS} characters")
    return watch
