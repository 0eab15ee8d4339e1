"""The pacing ledger: a ``Pacer`` whose bookings are persisted in the store per gateway, so IB's pacing budget
holds across processes (two backfills back to back, a backfill and a collect's gap repairs, a killed run)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

from sqlalchemy.engine import Engine

from ibkrtool.ib.pacer import Clock, Pacer, Sleep
from ibkrtool.ib.pacing import HistRequest, PacingPlanner, SentRequest
from ibkrtool.store.pacing_log import LoggedRequest, log_request, prune_requests, recent_requests

UTC = timezone.utc


def pacer_for(engine: Engine, gateway: str, scale: float, clock: Clock = time.time,
              sleep: Sleep = asyncio.sleep) -> Pacer:
    """A ``Pacer`` loaded with the requests recently booked for ``gateway`` (``host:port``), persisting every new
    booking. ``clock`` is epoch seconds (UTC). Raises ``StoreError`` if the database refuses."""
    probe = PacingPlanner(scale)
    lag = probe.rules.logged_lag_s  # the log holds send times; IB stamps a request when it reads it, later
    since = datetime.fromtimestamp(clock() - probe.horizon_s - lag, UTC)
    prune_requests(engine, since - timedelta(days=1))  # keep a day for inspection; older rows never count again
    history = [SentRequest(r.requested_at.timestamp() + lag,
                           HistRequest(str(r.conid), r.what_to_show, r.bar_size, r.end_datetime, r.duration,
                                       paced=r.weight > 0))
               for r in recent_requests(engine, gateway, since)]

    def persist(request: HistRequest, at: float) -> None:
        log_request(engine, gateway, LoggedRequest(datetime.fromtimestamp(at, UTC), int(request.contract),
                                                   request.bar_size, request.what_to_show, request.duration,
                                                   request.end, request.weight))

    return Pacer(PacingPlanner(scale, history=history), clock=clock, sleep=sleep, on_sent=persist)
