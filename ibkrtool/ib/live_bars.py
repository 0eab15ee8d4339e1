"""Closed bars for the live trader: one keepUpToDate historical request gives the warm-up, the bars missed while
away (after a reconnect or a resubscription) and the live updates; the last bar IB sends is still forming.

A bar counts as closed when IB starts the next one, or — at the session's close or in a halt, when IB starts no
next bar — once the gateway's clock is a whole bar length past its end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pandas as pd

from ibkrtool.ib.compat import IB, Contract
from ibkrtool.ib.events import ConnectivityEvent
from ibkrtool.ib.history import bars_frame
from ibkrtool.model import BarSize

UTC = timezone.utc
HISTORY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class ClosedBars:
    """Every closed bar so far (warm-up included; index ``ts`` = bar start, UTC). ``fresh`` marks the first frame
    of a (re)subscription: its last bar may already have been seen, and is evaluated once more."""

    frame: pd.DataFrame
    fresh: bool = False

    @property
    def last(self) -> datetime:
        return self.frame.index[-1].to_pydatetime()


NextEvent = Callable[[float], Awaitable[ConnectivityEvent | None]]
Now = Callable[[], Awaitable[datetime]]


async def closed_bars(ib: IB, contract: Contract, bar_size: BarSize, what_to_show: str, rth: bool,
                      warmup_days: int, next_event: NextEvent, now: Now, stop: Callable[[], bool],
                      poll_s: float = 1.0) -> AsyncIterator[ClosedBars | ConnectivityEvent]:
    """Yield closed bars and connectivity events until ``stop()`` (checked every ``poll_s`` seconds at least).

    After a ``Disconnected`` or ``Restored`` event the stream is dead: the caller stops iterating and calls this
    again (after reconnecting), which backfills what was missed.
    """
    bars = await ib.reqHistoricalDataAsync(contract, "", f"{warmup_days} D", bar_size.ib, what_to_show, rth, 2,
                                           keepUpToDate=True, timeout=HISTORY_TIMEOUT_S)
    closed = asyncio.Event()

    def on_update(_bars: object, has_new: bool) -> None:
        if has_new:
            closed.set()

    bars.updateEvent += on_update
    span = timedelta(seconds=bar_size.seconds)
    quiet_closed: datetime | None = None
    try:
        frame = bars_frame(list(bars)[:-1], bar_size)
        if not frame.empty:
            yield ClosedBars(frame, fresh=True)
        while not stop():
            event, has_bar = await _next(closed, next_event, poll_s)
            if event is not None:
                yield event
                continue
            if has_bar:
                closed.clear()
                frame = bars_frame(list(bars)[:-1], bar_size)
                if not frame.empty:
                    yield ClosedBars(frame)
            elif bars:
                last = _start(bars[-1].date)
                if last is not None and last != quiet_closed and await now() >= last + 2 * span:
                    quiet_closed = last
                    yield ClosedBars(bars_frame(list(bars), bar_size))
    finally:
        bars.updateEvent -= on_update
        if ib.isConnected():
            ib.cancelHistoricalData(bars)


async def _next(closed: asyncio.Event, next_event: NextEvent, poll_s: float) -> tuple[ConnectivityEvent | None, bool]:
    """Wait up to ``poll_s`` for a connectivity event or a new bar; an event wins when both are ready."""
    if closed.is_set():
        return await next_event(0.0), True
    waiter = asyncio.ensure_future(closed.wait())
    getter = asyncio.ensure_future(next_event(poll_s))
    try:
        await asyncio.wait({waiter, getter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    event = await getter if getter.done() else None
    if not getter.done():
        getter.cancel()
    return event, closed.is_set()


def _start(value: object) -> datetime | None:
    return value.astimezone(UTC) if isinstance(value, datetime) else None
