"""Replays posts at their original rhythm, sped up by a factor (0 = as fast as possible)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime


class Pacer:
    """Maps event time to wall time: the first post sets the origin, later ones wait (t - t0) / speed.

    Posts older than the current replay position (an unsorted file) are released at once rather
    than making the replay go backwards.
    """

    def __init__(
        self,
        speed: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0 (0 = as fast as possible)")
        self.speed = speed
        self._clock = clock
        self._sleep = sleep
        self._origin: tuple[float, float] | None = None

    def delay_for(self, event_time: datetime) -> float:
        """Seconds to wait before releasing a post stamped `event_time` (starts the clock on first call)."""
        if self.speed == 0:
            return 0.0
        now = self._clock()
        if self._origin is None:
            self._origin = (event_time.timestamp(), now)
        event_origin, wall_origin = self._origin
        due = wall_origin + (event_time.timestamp() - event_origin) / self.speed
        return max(0.0, due - now)

    async def wait_for(self, event_time: datetime) -> None:
        delay = self.delay_for(event_time)
        if delay > 0:
            await self._sleep(delay)
