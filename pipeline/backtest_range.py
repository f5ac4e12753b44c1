"""A backtest = a historical range of posts.raw replayed into a namespace of its own.

The copy gets its own topic prefix, consumer group and ClickHouse database, so a worker pointed at
the returned settings re-processes the range without touching live topics, offsets or tables.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from pipeline.replay import ReplayStats, replay
from pipeline.settings import Settings

_RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


def backtest_settings(settings: Settings, run_id: str) -> Settings:
    """The live settings moved into namespace ``backtest-<run_id>.`` (topics, group id, database)."""
    if not _RUN_ID.match(run_id):
        raise ValueError(f"run id {run_id!r}: use 1-40 letters, digits, '_' or '-'")
    return settings.model_copy(
        update={
            "topic_prefix": f"{settings.topic_prefix}backtest-{run_id}.",
            "app_id": f"{settings.app_id}-backtest-{run_id}",
            "clickhouse_database": f"{settings.clickhouse_database}_backtest_{run_id.replace('-', '_')}",
        }
    )


def default_run_id(start: datetime, end: datetime) -> str:
    fmt = "%Y%m%dT%H%M"
    return f"{start.astimezone(timezone.utc).strftime(fmt)}-{end.astimezone(timezone.utc).strftime(fmt)}"


async def backtest_range(
    settings: Settings, start: datetime, end: datetime, speed: float = 0.0, run_id: str | None = None
) -> tuple[Settings, ReplayStats]:
    """Replay [start, end) of the live raw topic into a fresh backtest namespace; returns its settings and counts."""
    target = backtest_settings(settings, run_id or default_run_id(start, end))
    return target, await replay(settings, target, start, end, speed)
