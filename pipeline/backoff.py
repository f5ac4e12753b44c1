"""Retry delays, one policy for the whole pipeline: exponential backoff with full jitter (connectors
retrying a source, batch stages retrying a batch), and a source's own "come back at" hints."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timezone
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class Backoff:
    """Delay before retry number `attempt` (0-based): uniform in [0, min(cap, base * factor**attempt)].

    Full jitter spreads the retries of many clients hit by the same outage instead of
    synchronising them.
    """

    base_s: float = 0.5
    factor: float = 2.0
    cap_s: float = 60.0

    def ceiling(self, attempt: int) -> float:
        return min(self.cap_s, self.base_s * self.factor**attempt)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        return (rng or random).uniform(0.0, self.ceiling(attempt))


def retry_after_seconds(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds the server asked us to wait: ``Retry-After`` (seconds or HTTP date) or X's ``x-rate-limit-reset``."""
    value = headers.get("Retry-After")
    if value is not None:
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            return max(0.0, when.timestamp() - now)
    reset = headers.get("x-rate-limit-reset")
    if reset is not None and reset.strip().isdigit():
        return max(0.0, float(reset) - now)
    return None
