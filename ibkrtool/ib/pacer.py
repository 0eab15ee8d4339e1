"""The asyncio side of pacing: wait until the pure planner allows a request, then book it.

Clock and sleep are injected (tests pass fakes); the clock is epoch seconds (UTC) so bookings can be shared with
other processes through a ``SharedLedger`` (``ib/ledger.py``): the final check of each request is then made
against every other process's bookings, atomically with booking it there. ``on_sent`` tells the caller that a
booked request actually left.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from ibkrtool.ib.pacing import HistRequest, PacingPlanner, SentRequest

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class SharedLedger(Protocol):
    """Where the processes pacing on one gateway book their requests (``ib/ledger.py``: the store)."""

    def book(self, request: HistRequest,
             decide: Callable[[Sequence[SentRequest]], tuple[float, float]]) -> tuple[float, float]:
        """Atomically with respect to every other process: read their bookings, ``decide(others)`` → ``(now,
        earliest)``, book ``request`` at ``now`` if ``earliest <= now``; return ``(now, earliest)``."""
        ...


class Pacer:
    """Gate historical requests through a ``PacingPlanner``: ``await pacer.acquire(req)`` then send at once.

    Several requests may be outstanding. IB stamps a request when it reads it, somewhere between our send and its
    answer, and reads requests in the order sent. So a request still in flight is counted as if stamped *now*
    whenever the next one is planned, and an answered one at its answer time: every booking is then at or after
    IB's stamp, which keeps all of IB's sliding-window rules however the gateway queues.
    """

    def __init__(self, planner: PacingPlanner, clock: Clock = time.time, sleep: Sleep = asyncio.sleep,
                 on_sent: Callable[[HistRequest, float], None] | None = None,
                 ledger: SharedLedger | None = None) -> None:
        self.planner = planner
        self.clock = clock
        self.sleep = sleep
        self.on_sent = on_sent
        self.ledger = ledger
        self.bookings = 0  # transactions with the shared ledger (booked or not) and their wall time, for benches
        self.booking_s = 0.0
        self.waited_s = 0.0  # wall time during which at least one request waited (overlapping waits count once)
        self._waits_end = float("-inf")
        self.waiting = 0  # callers inside acquire(): requests not yet released
        self._in_flight: dict[tuple[HistRequest, float], float] = {}  # (request, first booking) → booked at

    async def acquire(self, request: HistRequest) -> float:
        """Wait until ``request`` may go out, book it, and return the booking time (seconds on the clock).

        Call ``answered(request, booking time)`` when its answer, refusal or timeout arrives: until then it counts
        as in flight, and a request IB's rules tie to it waits. With a shared ledger, a request this process's view
        lets go is checked once more against the other processes' bookings and booked there in the same step (a
        ``StoreError`` from it propagates, nothing booked). The booking itself never yields to the event loop, so
        this process's other requests cannot take the same slot.
        """
        self.waiting += 1
        try:
            while True:
                now = self.clock()
                self._restamp_in_flight(now)
                delay = self.planner.earliest(request, now) - now
                if delay <= 0 and self.ledger is not None:
                    now, delay = self._book_shared(request)
                if delay <= 0:
                    break
                self._count_wait(now, delay)
                await self.sleep(delay)
        finally:
            self.waiting -= 1
        self.planner.record(request, now)
        self._in_flight[(request, now)] = now
        return now

    def _book_shared(self, request: HistRequest) -> tuple[float, float]:
        """``(now, seconds still to wait)`` after one locked round with the shared ledger (booked when 0)."""
        def decide(others: Sequence[SentRequest]) -> tuple[float, float]:
            self.planner.set_others(others)
            now = self.clock()
            self._restamp_in_flight(now)
            return now, self.planner.earliest(request, now)

        started = time.perf_counter()
        try:
            now, earliest = self.ledger.book(request, decide)  # type: ignore[union-attr]
        finally:
            self.bookings += 1
            self.booking_s += time.perf_counter() - started
        return now, earliest - now

    @property
    def outstanding(self) -> int:
        """Requests released and not yet answered."""
        return len(self._in_flight)

    def _restamp_in_flight(self, now: float) -> None:
        for key, booked in self._in_flight.items():
            if booked < now:
                self.planner.rebook(key[0], booked, now)
                self._in_flight[key] = now

    def sent(self, request: HistRequest, at: float) -> None:
        """Report that the booked request actually left (calls ``on_sent``)."""
        if self.on_sent is not None:
            self.on_sent(request, at)

    def answered(self, request: HistRequest, sent_at: float) -> None:
        """Report that the answer (bars or an error) to a booked request arrived: rebook it at this moment."""
        booked = self._in_flight.pop((request, sent_at), None)
        if booked is not None:  # a second report of the same answer changes nothing
            self.planner.rebook(request, booked, max(booked, self.clock()))

    async def penalty(self, seconds: float) -> None:
        """Pause after IB refused a request for pacing (e.g. the rest of a window), counted as waiting time."""
        self._count_wait(self.clock(), seconds)
        await self.sleep(seconds)

    def _count_wait(self, now: float, delay: float) -> None:
        end = now + delay
        self.waited_s += max(0.0, end - max(now, self._waits_end))
        self._waits_end = max(self._waits_end, end)
