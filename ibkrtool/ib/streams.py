"""Live streams from IB: 5-second real-time bars and tick-by-tick trades / midpoints, delivered as plain values.

ib_async stamps tick-by-tick ticks with their local arrival time (facts §3, reqTickByTickData); bars must be labelled
by the exchange's time, so the wrapper's tick callbacks are tapped per IB instance to keep the time IB sent.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from ibkrtool.ib.compat import IB, Contract

log = logging.getLogger(__name__)
UTC = timezone.utc


@dataclass(frozen=True)
class LiveBar:
    """A 5-second real-time bar; ``start`` tz-aware UTC; volume/wap/count NaN when IB sends -1."""

    start: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    wap: float
    count: float


@dataclass(frozen=True)
class Tick:
    """A trade (``size`` > 0) or a midpoint (``size`` NaN), at IB's time (whole seconds, UTC)."""

    time: datetime
    price: float
    size: float


BarHandler = Callable[[LiveBar], None]
TickHandler = Callable[[Tick], None]


@dataclass
class Subscription:
    """The IB handles of one instrument's streams (for cancelling)."""

    contract: Contract
    bars: object
    tick_req_id: int
    ticker: object
    tick_type: str = "AllLast"


def tick_type_for(what_to_show: str) -> str:
    """IB's tick-by-tick type matching a real-time bar type: midpoints for MIDPOINT (forex), else trades."""
    return "MidPoint" if what_to_show.upper() == "MIDPOINT" else "AllLast"


def _nan_if_negative(value: float) -> float:
    return math.nan if value is None or value < 0 else float(value)


class _TickTap:
    """Routes tick-by-tick callbacks with IB's own timestamp to handlers, keyed by request id."""

    def __init__(self, ib: IB) -> None:
        self.handlers: dict[int, TickHandler] = {}
        wrapper = ib.wrapper
        all_last, midpoint = wrapper.tickByTickAllLast, wrapper.tickByTickMidPoint

        def tap_all_last(req_id: int, tick_type: int, time: int, price: float, size: float, *rest: object) -> None:
            handler = self.handlers.get(req_id)
            if handler is not None and size > 0:
                handler(Tick(datetime.fromtimestamp(int(time), UTC), float(price), float(size)))
            all_last(req_id, tick_type, time, price, size, *rest)

        def tap_midpoint(req_id: int, time: int, mid: float) -> None:
            handler = self.handlers.get(req_id)
            if handler is not None:
                handler(Tick(datetime.fromtimestamp(int(time), UTC), float(mid), math.nan))
            midpoint(req_id, time, mid)

        wrapper.tickByTickAllLast = tap_all_last
        wrapper.tickByTickMidPoint = tap_midpoint


def _tap(ib: IB) -> _TickTap:
    tap = getattr(ib, "_ibkrtool_tick_tap", None)
    if tap is None:
        tap = _TickTap(ib)
        ib._ibkrtool_tick_tap = tap  # type: ignore[attr-defined]
    return tap


def subscribe(ib: IB, contract: Contract, what_to_show: str, rth: bool, on_bar: BarHandler,
              on_tick: TickHandler) -> Subscription:
    """Start 5-second bars (``what_to_show``) and the matching tick-by-tick stream for ``contract``."""
    tick_type = tick_type_for(what_to_show)
    bars = ib.reqRealTimeBars(contract, 5, what_to_show, rth)

    def on_update(bar_list: object, has_new: bool) -> None:
        if not has_new or not bar_list:
            return
        b = bar_list[-1]
        start = b.time if b.time.tzinfo else b.time.replace(tzinfo=UTC)
        on_bar(LiveBar(start.astimezone(UTC), b.open_, b.high, b.low, b.close, _nan_if_negative(b.volume),
                       _nan_if_negative(b.wap), _nan_if_negative(b.count)))

    bars.updateEvent += on_update
    tap = _tap(ib)
    ticker = ib.reqTickByTickData(contract, tick_type, 0, False)
    # ib_async keeps one Ticker per contract: after a resubscription the newest request id is ours
    req_id = max((rid for rid, t in ib.wrapper.reqId2Ticker.items() if t is ticker), default=-1)
    tap.handlers[req_id] = on_tick
    return Subscription(contract, bars, req_id, ticker, tick_type)


def unsubscribe(ib: IB, sub: Subscription) -> None:
    """Cancel both streams; safe on a dead connection."""
    _tap(ib).handlers.pop(sub.tick_req_id, None)
    if not ib.isConnected():
        return
    try:
        ib.cancelRealTimeBars(sub.bars)
        ib.cancelTickByTickData(sub.contract, sub.tick_type)
    except (ConnectionError, OSError) as exc:  # pragma: no cover - connection died mid-cancel
        log.debug("cancel failed: %s", exc)
