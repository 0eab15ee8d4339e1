"""The asyncio side of pacing: wait until the pure planner allows a request, then book it.

Clock and sleep are injected (tests pass fakes); the clock is epoch seconds (UTC) so bookings can be persisted
and reloaded by the next run. ``on_sent`` lets the caller persist each booking (``store/pacing_log.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from ibkrtool.ib.pacing import HistRequest, PacingPlanner

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class Pacer:
    """Gate historical requests through a ``PacingPlanner``: ``await pacer.acquire(req)`` then send at once."""

    def __init__(self, planner: PacingPlanner, clock: Clock = time.time, sleep: Sleep = asyncio.sleep,
                 on_sent: Callable[[HistRequest, float], None] | None = None) -> None:
        self.planner = planner
        self.clock = clock
        self.sleep = sleep
        self.on_sent = on_sent
        self.waited_s = 0.0

    async def acquire(self, request: HistRequest) -> float:
        """Wait until ``request`` may go out, book it, and return the booking time (seconds on the clock)."""
        while True:
            now = self.clock()
            delay = self.planner.earliest(request, now) - now
            if delay <= 0:
                break
            self.waited_s += delay
            await self.sleep(delay)
        self.planner.record(request, now)
        return now

    def sent(self, request: HistRequest, at: float) -> None:
        """Report that the booked request actually left (persists it through ``on_sent``)."""
        if self.on_sent is not None:
            self.on_sent(request, at)

    def answered(self, request: HistRequest, sent_at: float) -> None:
        """Report that the answer (bars or an error) to a booked request arrived: rebook it at this moment."""
        self.planner.rebook(request, sent_at, self.clock())

    async def penalty(self, seconds: float) -> None:
        """Pause after IB refused a request for pacing (e.g. the rest of a window), counted as waiting time."""
        self.waited_s += seconds
        await self.sleep(seconds)
