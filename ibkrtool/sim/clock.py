"""Simulated time: starts at a chosen instant and runs ``speed`` times faster than the wall clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone


class SimClock:
    """``now()`` = start + elapsed real (monotonic) time × speed, tz-aware UTC.

    ``start=None`` means the current wall-clock time. Raises ValueError for a naive start or speed <= 0.
    """

    def __init__(self, start: datetime | None = None, speed: float = 1.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if start is None:
            start = datetime.now(timezone.utc)
        if start.tzinfo is None:
            raise ValueError("SimClock start must be tz-aware (UTC)")
        if speed <= 0:
            raise ValueError(f"SimClock speed must be > 0, got {speed}")
        self.start = start.astimezone(timezone.utc)
        self.speed = float(speed)
        self._monotonic = monotonic
        self._t0 = monotonic()

    def now(self) -> datetime:
        """Current simulated time, tz-aware UTC (microsecond resolution)."""
        return self.start + timedelta(seconds=(self._monotonic() - self._t0) * self.speed)

    def real_seconds_until(self, t: datetime) -> float:
        """Wall-clock seconds until the simulated clock reaches ``t`` (0 if already past)."""
        return max(0.0, (t - self.now()).total_seconds() / self.speed)
