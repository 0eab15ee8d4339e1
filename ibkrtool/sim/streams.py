"""Subscriptions that keep sending as the sim clock advances: keepUpToDate bars, real-time bars, tick-by-tick.

Each stream is one asyncio task on the sim's loop. Timing follows the SIM clock (so ``--speed`` accelerates
streams), polled at a real-time cadence that keeps message rates sane at high speeds.
"""

from __future__ import annotations

import asyncio
import logging
import math
from abc import ABC, abstractmethod
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from ibkrtool.sim import codec
from ibkrtool.sim.history import format_bar_time
from ibkrtool.sim.market import SimBar

if TYPE_CHECKING:
    from ibkrtool.sim.session import Session

log = logging.getLogger(__name__)

REALTIME_WHAT = ("TRADES", "MIDPOINT", "BID", "ASK")
TICK_TYPES = {"Last": 1, "AllLast": 2, "BidAsk": 3, "MidPoint": 4}
POLL_S = 0.2  # real seconds between polls of the market
MAX_TICKS_PER_POLL = 2000
_UNIT_S = {"sec": 1, "secs": 1, "min": 60, "mins": 60, "hour": 3600, "hours": 3600, "day": 86400,
           "days": 86400, "week": 7 * 86400, "weeks": 7 * 86400, "month": 31 * 86400, "months": 31 * 86400}


def bar_seconds(bar_size: str) -> int:
    """Nominal length of an IB bar size in seconds ("5 mins" -> 300; a month counts 31 days)."""
    n, _, unit = bar_size.strip().partition(" ")
    return int(n) * _UNIT_S.get(unit, 86400)


class Stream(ABC):
    """Base: ``start()`` launches ``_run`` as a task; ``cancel()`` stops it. Errors are logged, never raised."""

    def __init__(self, session: Session, req_id: int) -> None:
        self.session, self.req_id = session, req_id
        self.server = session.server
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._guarded())

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _guarded(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("stream %s id=%d failed", type(self).__name__, self.req_id)

    @abstractmethod
    async def _run(self) -> None:
        """The stream's loop; each kind of stream sends its own messages."""


class KeepUpToDate(Stream):
    """historicalDataUpdate (90) messages: the growing current bar, and each finished bar once more when it closes."""

    def __init__(self, session: Session, req_id: int, contract: Any, window: Any, format_date: int,
                 last_bar: SimBar | None) -> None:
        super().__init__(session, req_id)
        self.contract, self.window, self.format_date = contract, window, format_date
        self.current_start = last_bar.start if last_bar is not None else None
        self.last_sent: tuple | None = None
        self.seconds = bar_seconds(window.bar_size)

    def _bars(self, size: str, start: datetime, end: datetime) -> list[SimBar]:
        w = self.window
        return self.server.market.bars(self.contract, size, start, end, w.what_to_show, w.use_rth)

    def _send(self, bar: SimBar) -> None:
        row = (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.wap, bar.count)
        if (bar.start, row) == self.last_sent:
            return
        self.last_sent = (bar.start, row)
        date = format_bar_time(bar, self.window.bar_size, self.format_date, self.contract)
        self.session.send(codec.historical_data_update(self.req_id, date, bar.open, bar.high, bar.low, bar.close,
                                                       bar.volume, bar.wap, bar.count))

    def _tick(self) -> None:
        # Market.bars never looks past ``end``: the last bar returned is the current one, formed up to now.
        now_s = self.server.clock.now().replace(microsecond=0)
        lookback = timedelta(seconds=max(3 * self.seconds, 3 * POLL_S * self.server.clock.speed + self.seconds))
        recent = self._bars(self.window.bar_size, now_s - lookback, now_s)
        for bar in recent:
            if self.current_start is None or bar.start >= self.current_start:
                self._send(bar)
        if recent:
            self.current_start = recent[-1].start

    async def _run(self) -> None:
        interval = max(POLL_S, 1.0 / self.server.clock.speed)
        while True:
            await asyncio.sleep(interval)
            self._tick()


class RealTimeBars(Stream):
    """realtimeBar (50): one 5-second bar each time the sim clock crosses a 5-second boundary (time = bar start)."""

    def __init__(self, session: Session, req_id: int, contract: Any, what: str, use_rth: bool) -> None:
        super().__init__(session, req_id)
        self.contract, self.what, self.use_rth = contract, what, use_rth

    async def _run(self) -> None:
        clock = self.server.clock
        now = clock.now()
        boundary = datetime.fromtimestamp(math.ceil(now.timestamp() / 5) * 5, timezone.utc)
        while True:
            await asyncio.sleep(max(clock.real_seconds_until(boundary), 0.001))
            now = clock.now()
            sent = 0
            while boundary <= now and sent < 100:
                self._send_bar(boundary - timedelta(seconds=5), boundary)
                boundary += timedelta(seconds=5)
                sent += 1
            if boundary <= now:  # far behind (huge speed): skip ahead rather than flood
                boundary = datetime.fromtimestamp(math.ceil(now.timestamp() / 5) * 5, timezone.utc)

    def _send_bar(self, start: datetime, end: datetime) -> None:
        if not self.server.connected_to_ib:  # no data while IB is unreachable (between 1100 and 1102)
            return
        bars = self.server.market.bars(self.contract, "5 secs", start, end, self.what, self.use_rth)
        for b in bars:
            self.session.send(codec.realtime_bar(self.req_id, int(b.start.timestamp()), b.open, b.high, b.low,
                                                 b.close, b.volume, b.wap, b.count))


class TickByTick(Stream):
    """tickByTick (99): trades (Last/AllLast) as they happen; BidAsk/MidPoint when the quote changes at a poll."""

    def __init__(self, session: Session, req_id: int, contract: Any, tick_type: str) -> None:
        super().__init__(session, req_id)
        self.contract, self.tick_type = contract, tick_type
        self.code = TICK_TYPES[tick_type]
        self.last_quote: tuple | None = None

    async def _run(self) -> None:
        clock = self.server.clock
        since = clock.now()
        while True:
            await asyncio.sleep(POLL_S)
            now = clock.now()
            if not self.server.connected_to_ib:
                since = now
                continue
            if self.code in (1, 2):
                self._trades(since, now)
            else:
                self._quote(now)
            since = now

    def _trades(self, start: datetime, end: datetime) -> None:
        exchange = self.contract.primary_exchange or self.contract.exchange
        for t in self.server.market.ticks(self.contract, start, end)[:MAX_TICKS_PER_POLL]:
            self.session.send(codec.tick_last(self.req_id, self.code, int(t.time.timestamp()), t.price, t.size,
                                              exchange))

    def _quote(self, now: datetime) -> None:
        q = self.server.market.quote(self.contract, now)
        key = (q.bid, q.ask) if self.code == 4 else (q.bid, q.ask, q.bid_size, q.ask_size)
        if key == self.last_quote:
            return
        self.last_quote = key
        epoch = int(now.timestamp())
        if self.code == 3:
            self.session.send(codec.tick_bid_ask(self.req_id, epoch, q.bid, q.ask, q.bid_size, q.ask_size))
        else:
            self.session.send(codec.tick_midpoint(self.req_id, epoch, round((q.bid + q.ask) / 2, 10)))


# IB tick types (TWS API "Available Tick Types")
BID_SIZE, BID, ASK, ASK_SIZE, LAST, LAST_SIZE, HIGH, LOW, VOLUME, CLOSE = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9


class MarketData(Stream):
    """reqMktData: bid/ask/last with sizes, session high/low/volume and the previous close; ``snapshot`` sends
    one round then tickSnapshotEnd (57). Streaming sends what changed at each poll."""

    def __init__(self, session: Session, req_id: int, contract: Any, snapshot: bool) -> None:
        super().__init__(session, req_id)
        self.contract, self.snapshot = contract, snapshot
        self.sent: dict[int, Any] = {}
        self.is_stock = contract.sec_type == "STK"

    def _put_price(self, tick_type: int, price: float, size: float) -> None:
        if price > 0 and self.sent.get(tick_type) != (price, size):
            self.sent[tick_type] = (price, size)
            self.session.send(codec.tick_price(self.req_id, tick_type, price, size))

    def _put_size(self, tick_type: int, size: float) -> None:
        if size >= 0 and self.sent.get(tick_type) != size:
            self.sent[tick_type] = size
            self.session.send(codec.tick_size(self.req_id, tick_type, size))

    def _quote(self, now: datetime) -> None:
        q = self.server.market.quote(self.contract, now)
        self._put_price(BID, q.bid, q.bid_size)
        self._put_price(ASK, q.ask, q.ask_size)
        if self.is_stock and q.last > 0:
            self._put_price(LAST, q.last, q.last_size)

    def _session_figures(self, now: datetime) -> None:
        what = "TRADES" if self.is_stock else "MIDPOINT"
        days = self.server.market.bars(self.contract, "1 day", now - timedelta(days=7), now, what, False)
        if not days:
            return
        today = days[-1]
        self._put_price(HIGH, today.high, 0)
        self._put_price(LOW, today.low, 0)
        if len(days) > 1:
            self._put_price(CLOSE, days[-2].close, 0)
        if self.is_stock:
            self._put_size(VOLUME, today.volume / 100)  # IB reports US stock volume in lots of 100

    async def _run(self) -> None:
        self.session.send(codec.market_data_type(self.req_id))
        self.session.send(codec.tick_req_params(self.req_id, self.contract.min_tick, "9c0001"))
        now = self.server.clock.now()
        self._quote(now)
        self._session_figures(now)
        if self.snapshot:
            self.session.send(codec.tick_snapshot_end(self.req_id))
            self.session.streams.pop(self.req_id, None)
            return
        polls = 0
        while True:
            await asyncio.sleep(POLL_S)
            now = self.server.clock.now()
            if not self.server.connected_to_ib:
                continue
            self._quote(now)
            polls += 1
            if polls % 5 == 0:
                self._session_figures(now)
