"""The pacing ledger: IB's pacing budget held per gateway in the store, so it holds across processes (two backfills
at once — the Airflow DAG maps one per symbol —, cron jobs that overlap, a backfill and a collect's gap repairs,
a killed run and its rerun).

Every request is booked in the store before it leaves, atomically with the check against every other process's
bookings for the same gateway (``store.pacing_log.gateway_lock``: PostgreSQL advisory lock on a hash of
``host:port``, SQLite ``BEGIN IMMEDIATE``). Inside that one short transaction the ledger reads the bookings of
the last ~10 minutes, hands the other processes' ones to the pure planner (``PacingPlanner.set_others``) and
inserts the booking only if the planner's earliest time is now; otherwise nothing is written, the lock is
released and the ``Pacer`` sleeps until that time and tries again. A process's own bookings stay in its planner,
where they are counted more precisely (in flight until answered, then at the answer time); it tells them apart
in the store by the row ids it inserted. Other processes' bookings count as in flight until ``logged_lag_s``
after they were booked, then at that bound (``ib/pacing.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone

from sqlalchemy.engine import Engine

from ibkrtool.ib.pacer import Clock, Pacer, Sleep
from ibkrtool.ib.pacing import HistRequest, PacingPlanner, SentRequest
from ibkrtool.store.pacing_log import (
    LoggedRequest,
    bookings_since,
    gateway_lock,
    insert_booking,
    prune_requests,
)

UTC = timezone.utc
KEEP_S = 86_400.0
"""Bookings are kept a day for inspection (``db`` queries), then pruned; they stop counting after ~10 minutes."""
PRUNE_EVERY_S = 3_600.0

Decide = Callable[[Sequence[SentRequest]], tuple[float, float]]


class StoreLedger:
    """The bookings of one gateway (``host:port``) in ``engine``, shared by every process that paces on it."""

    def __init__(self, engine: Engine, gateway: str, planner: PacingPlanner, clock: Clock = time.time) -> None:
        self.engine = engine
        self.gateway = gateway
        self.planner = planner
        self.clock = clock
        self._own: set[int] = set()  # ids of the rows this process booked (its planner counts them itself)
        self._pruned_at = float("-inf")

    def others(self) -> list[SentRequest]:
        """Other processes' bookings that can still matter now (for the first estimates). Raises ``StoreError``."""
        with gateway_lock(self.engine, self.gateway) as conn:
            return self._read(conn, self.clock())

    def book(self, request: HistRequest, decide: Decide) -> tuple[float, float]:
        """In one transaction holding the gateway's lock: read the other processes' bookings, ``decide(others)`` →
        ``(now, earliest)``, and insert ``request`` booked at ``now`` when ``earliest <= now``.

        Returns ``(now, earliest)``. Raises ``StoreError``; nothing is booked then.
        """
        with gateway_lock(self.engine, self.gateway) as conn:
            now, earliest = decide(self._read(conn, self.clock()))
            if earliest <= now:
                self._own.add(insert_booking(conn, self.gateway, _logged(request, now)))
                if now - self._pruned_at >= PRUNE_EVERY_S:
                    prune_requests(conn, datetime.fromtimestamp(now - KEEP_S, UTC))
                    self._pruned_at = now
        return now, earliest

    def _read(self, conn, now: float) -> list[SentRequest]:
        paced_since = datetime.fromtimestamp(now - self.planner.lookback_s(paced=True), UTC)
        any_since = datetime.fromtimestamp(now - self.planner.lookback_s(paced=False), UTC)
        rows = bookings_since(conn, self.gateway, paced_since, any_since)
        ids = {i for i, _ in rows}
        self._own &= ids  # ours that left the window never come back: forget them
        return [_sent(r) for i, r in rows if i not in self._own]


def _logged(request: HistRequest, at: float) -> LoggedRequest:
    return LoggedRequest(datetime.fromtimestamp(at, UTC), int(request.contract), request.bar_size,
                         request.what_to_show, request.duration, request.end, request.weight)


def _sent(row: LoggedRequest) -> SentRequest:
    return SentRequest(row.requested_at.timestamp(),
                       HistRequest(str(row.conid), row.what_to_show, row.bar_size, row.end_datetime, row.duration,
                                   paced=row.weight > 0))


def pacer_for(engine: Engine, gateway: str, scale: float, clock: Clock = time.time,
              sleep: Sleep = asyncio.sleep) -> Pacer:
    """A ``Pacer`` that books every request in ``gateway``'s (``host:port``) shared ledger in ``engine``, checked
    against every other process's bookings (module docstring). ``clock`` is epoch seconds (UTC), the same on
    every process. Raises ``StoreError`` if the database refuses."""
    planner = PacingPlanner(scale)
    ledger = StoreLedger(engine, gateway, planner, clock)
    prune_requests(engine, datetime.fromtimestamp(clock(), UTC) - timedelta(seconds=KEEP_S))
    planner.set_others(ledger.others())  # what is already booked, for the first estimates
    return Pacer(planner, clock=clock, sleep=sleep, ledger=ledger)
