"""Bars as parallel arrays: 1-second bars straight from a generated session, exact aggregation into larger
bars (open first, high max, low min, close last, volume sum, WAP volume-weighted, count sum; BID_ASK: open/close
are time averages of bid/ask, high max ask, low min bid), and conversion to ``SimBar`` objects.

Seconds without trades have no TRADES bar, as at IB. Used by ``market.py`` (generated data) and ``replay.py``
(recorded bars).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

import numpy as np

from ibkrtool.sim.generator import QUOTES_PER_S, _Day, _price_scale


class SimBar(NamedTuple):
    """One bar as IB sends it. ``start`` is the bar start, tz-aware UTC; non-TRADES bars have volume/wap/count -1.

    A named tuple, not a frozen dataclass: replies build thousands per request and a tuple is ~5× cheaper to make.
    """

    start: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    wap: float
    count: int


@dataclass(frozen=True)
class _Arr:
    """Bars as parallel arrays: start (epoch s), OHLC, volume, WAP, count and seconds covered (for time averages)."""

    t: np.ndarray
    o: np.ndarray
    h: np.ndarray
    low: np.ndarray
    c: np.ndarray
    v: np.ndarray
    w: np.ndarray
    n: np.ndarray
    k: np.ndarray

    def __len__(self) -> int:
        return len(self.t)

    def take(self, sl: slice | np.ndarray) -> _Arr:
        return _Arr(*(getattr(self, f)[sl] for f in _FIELDS))


_FIELDS = ("t", "o", "h", "low", "c", "v", "w", "n", "k")
_UNIT_S = {"secs": 1, "sec": 1, "min": 60, "mins": 60, "hour": 3600, "hours": 3600}
_PERIODS = {"day": "D", "days": "D", "week": "W", "weeks": "W", "W": "W", "month": "M", "months": "M", "M": "M"}


def bar_length(bar_size: str) -> int | str:
    """Seconds for an intraday IB bar size (``"5 mins"`` → 300), else ``"D"``, ``"W"`` or ``"M"``.

    Accepts IB's spellings plus ``1W``/``1M``; raises ValueError otherwise (history.py validates first).
    """
    text = bar_size.strip()
    if text in ("1W", "1M"):
        return text[1]
    count, _, unit = text.partition(" ")
    if not count.isdigit():
        raise ValueError(f"bad bar size {bar_size!r}")
    if unit in _UNIT_S:
        return int(count) * _UNIT_S[unit]
    if unit in _PERIODS and count == "1":
        return _PERIODS[unit]
    raise ValueError(f"bad bar size {bar_size!r}")


def _one_second(day: _Day, what: str) -> _Arr:
    """1-second bars of a whole (all-hours) session for ``what`` (TRADES/MIDPOINT/BID/ASK/BID_ASK)."""
    hit = day.one_s.get(what)
    if hit is not None:
        return hit
    inv = _price_scale(day.tick)
    n, q = day.n_seconds, QUOTES_PER_S
    if what == "TRADES":
        arr = _trade_bars(day, inv)
    else:
        bid, ask = day.bid.reshape(n, q), day.ask.reshape(n, q)
        t = day.t0 + np.arange(n, dtype=np.int64)
        neg = np.full(n, -1.0)
        if what == "BID_ASK":
            o, h, low, c = bid.mean(1) / inv, ask.max(1) / inv, bid.min(1) / inv, ask.mean(1) / inv
        else:
            src, div = {"BID": (bid, inv), "ASK": (ask, inv), "MIDPOINT": (bid + ask, 2 * inv)}[what]
            o, h, low, c = src[:, 0] / div, src.max(1) / div, src.min(1) / div, src[:, -1] / div
        arr = _Arr(t, o, h, low, c, neg, neg, np.full(n, -1, dtype=np.int64), np.ones(n, dtype=np.int64))
    day.one_s[what] = arr
    return arr


def _trade_bars(day: _Day, inv: float) -> _Arr:
    sec, px, size = day.trade_sec, day.trade_px, day.trade_size
    if len(sec) == 0:
        e = np.empty(0)
        ei = np.empty(0, dtype=np.int64)
        return _Arr(ei, e, e, e, e, e, e, ei, ei)
    idx = np.flatnonzero(np.diff(sec, prepend=-1))
    last = np.r_[idx[1:] - 1, len(sec) - 1]
    price = px / inv
    v = np.add.reduceat(size, idx)
    return _Arr(day.t0 + sec[idx], px[idx] / inv, np.maximum.reduceat(px, idx) / inv,
                np.minimum.reduceat(px, idx) / inv, px[last] / inv, v, np.add.reduceat(price * size, idx) / v,
                np.diff(np.r_[idx, len(sec)]), np.ones(len(idx), dtype=np.int64))


def _aggregate(a: _Arr, labels: np.ndarray, time_avg: bool) -> _Arr:
    """Aggregate consecutive rows with equal ``labels`` (sorted) exactly as IB builds larger bars."""
    if len(a) == 0:
        return a
    idx = np.flatnonzero(np.diff(labels, prepend=labels[0] - 1))
    last = np.r_[idx[1:] - 1, len(a) - 1]
    k = np.add.reduceat(a.k, idx)
    if time_avg:
        o, c = np.add.reduceat(a.o * a.k, idx) / k, np.add.reduceat(a.c * a.k, idx) / k
    else:
        o, c = a.o[idx], a.c[last]
    if a.v[0] < 0:
        v = w = np.full(len(idx), -1.0)
        n = np.full(len(idx), -1, dtype=np.int64)
    else:
        v = np.add.reduceat(a.v, idx)
        w = np.add.reduceat(a.w * a.v, idx) / v
        n = np.add.reduceat(a.n, idx)
    return _Arr(labels[idx], o, np.maximum.reduceat(a.h, idx), np.minimum.reduceat(a.low, idx), c, v, w, n, k)


def _concat(parts: list[_Arr]) -> _Arr:
    """One table of several in time order; an empty table when there are none."""
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return _Arr(np.empty(0, np.int64), *(np.empty(0) for _ in _FIELDS[1:7]), np.empty(0, np.int64),
                    np.empty(0, np.int64))
    return _Arr(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))


def trade_fields(a: _Arr) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Volume, WAP and count as IB sends them: -1 for all three when no trades lie behind the bars
    (MIDPOINT, BID, ASK, BID_ASK), whatever aggregation made of the -1 placeholders."""
    if len(a) and a.v[0] < 0:
        return np.full(len(a), -1.0), np.full(len(a), -1.0), np.full(len(a), -1, dtype=np.int64)
    return a.v, a.w, a.n


def _to_bars(a: _Arr) -> list[SimBar]:
    starts = [datetime.fromtimestamp(t, UTC) for t in a.t.tolist()]
    volume, wap, count = trade_fields(a)
    return list(map(SimBar._make, zip(starts, a.o.tolist(), a.h.tolist(), a.low.tolist(), a.c.tolist(),
                                      volume.tolist(), wap.tolist(), count.tolist(), strict=True)))
