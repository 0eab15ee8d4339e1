"""The sim's deterministic market: quotes, trades and bars at every resolution, all from one per-second source.

Generation lives in ``generator.py`` (per-session quote states and trades), 1-second bars and their aggregation in
``bars.py``, per-session daily summaries in ``summaries.py``. Every bar size is an exact aggregation of the
1-second bars.

Alignment (IB, TWS API "Historical Bar Data"; behaviour seen in ib_insync/ib_async outputs, e.g. RTH hourly bars
stamped 09:30, 10:00, 11:00): intraday bars are aligned to the clock in the exchange time zone (New York), so
5-minute bars start at :00, :05 …; a bin cut by the session start is stamped with the session start. Daily bars
cover one session (forex: 17:00→17:00 New York) and start at its open; weekly bars group the sessions of one
Monday–Friday week and monthly bars those of one calendar month, each starting at its first session's open
(TWS dates them with their last trading day: ``history.format_bar_time``).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from ibkrtool.sim import calendar as cal
from ibkrtool.sim.bars import (
    SimBar,
    _aggregate,
    _Arr,
    _concat,
    _one_second,
    _to_bars,
    bar_length,
)
from ibkrtool.sim.calendar import Session
from ibkrtool.sim.contracts import SimContract
from ibkrtool.sim.generator import QUOTES_PER_S, _Day, _generate_day, _price_scale, default_head_timestamp
from ibkrtool.sim.summaries import KIND_INDEX, SUMMARIES, rows_to_arr, span_row, summarise

if TYPE_CHECKING:
    from ibkrtool.sim.replay import ReplaySource

__all__ = ["Market", "Quote", "SimBar", "SimTick", "bar_length", "default_head_timestamp"]


@dataclass(frozen=True)
class Quote:
    """Top of book at ``time`` (UTC). ``last``/``last_size`` are NaN/0 for forex (IDEALPRO has no last)."""

    time: datetime
    bid: float
    ask: float
    last: float
    bid_size: float
    ask_size: float
    last_size: float


@dataclass(frozen=True)
class SimTick:
    """One trade (``time`` UTC, microseconds) with the quote prevailing when it printed."""

    time: datetime
    price: float
    size: float
    bid: float
    ask: float
    bid_size: float
    ask_size: float


def _utc(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError("Market times must be tz-aware (UTC)")
    return t.astimezone(UTC)


class Market:
    """Deterministic quotes, trades and bars for the sim's contracts; the same request always gives the same data.

    Data never looks past the requested ``end``: a bar still forming at ``end`` covers only the seconds before it.
    """

    _DAY_CACHE = 8  # raw sessions (a few MB each)
    _BAR_CACHE = 1_000_000  # bars (as arrays) kept for repeated requests (~17 sessions of 1-second bars)

    def __init__(self, seed: int = 1, replay: ReplaySource | None = None) -> None:
        self.seed = seed
        self.replay = replay
        self._days: OrderedDict[tuple[str, date], _Day] = OrderedDict()
        self._bars: OrderedDict[tuple, _Arr] = OrderedDict()
        self._cached_bars = 0

    # --- raw data -------------------------------------------------------------------------------------------
    def _day(self, contract: SimContract, s: Session) -> _Day:
        key = (contract.local_symbol, s.label)
        day = self._days.get(key)
        if day is None:
            day = _generate_day(self.seed, contract, s)
            self._days[key] = day
            if len(self._days) > self._DAY_CACHE:
                self._days.popitem(last=False)
        else:
            self._days.move_to_end(key)
        return day

    def _rows(self, contract: SimContract, s: Session, what: str, use_rth: bool, end: int) -> tuple[_Arr, int]:
        """1-second rows of session ``s`` inside its (regular) hours and before ``end``; and the New York offset."""
        day = self._day(contract, s)
        a = _one_second(day, what)
        lo, hi = s.bounds(use_rth)
        i, j = np.searchsorted(a.t, [int(lo.timestamp()), min(int(hi.timestamp()), end)])
        return a.take(slice(i, j)), day.utc_offset

    def _intraday(self, contract: SimContract, s: Session, what: str, use_rth: bool, length: int, end: int) -> _Arr:
        rows, offset = self._rows(contract, s, what, use_rth, end)
        if length == 1 or len(rows) == 0:
            return rows
        first = int(s.bounds(use_rth)[0].timestamp())
        labels = np.maximum((rows.t + offset) // length * length - offset, first)
        return _aggregate(rows, labels, what == "BID_ASK")

    def _session_row(self, contract: SimContract, s: Session, what: str, use_rth: bool, end: int) -> np.ndarray:
        """One row (``bars._FIELDS`` order, NaN if no data) summarising the session up to ``end``, stamped at the
        session's (regular) open; complete sessions come from the process-wide ``summaries.SUMMARIES``."""
        if end >= int(s.bounds(use_rth)[1].timestamp()):
            return self._summary_table(contract, s)[KIND_INDEX[(what, use_rth)]]
        day = self._day(contract, s)
        lo, hi = (int(b.timestamp()) - day.t0 for b in s.bounds(use_rth))
        return span_row(day, what, lo, min(hi, end - day.t0))

    def _summary_table(self, contract: SimContract, s: Session) -> np.ndarray:
        key = (self.seed, contract.local_symbol, s.label)
        table = SUMMARIES.get(key)
        if table is None:
            table = summarise(self._day(contract, s))
            SUMMARIES.put(key, table)
        return table

    # --- public API -----------------------------------------------------------------------------------------
    def bars(self, contract: SimContract, bar_size: str, start: datetime, end: datetime, what_to_show: str,
             use_rth: bool) -> list[SimBar]:
        """Bars whose start lies in ``[start, end)`` (tz-aware), IB spelling of ``bar_size`` ("1 secs" … "1 month").

        Bars are empty-free: a bin without data (e.g. no trades) is omitted. Raises ValueError for a bad bar size.
        """
        table = self.bar_table(contract, bar_size, start, end, what_to_show, use_rth)
        if table is not None:
            return _to_bars(table)
        start, end = _utc(start), _utc(end)
        what = what_to_show.upper()
        if self.replay is not None and self.replay.serves(contract, bar_size):
            return self.replay.bars(contract, bar_size, start, end, what, use_rth)
        start = max(start, default_head_timestamp(contract))  # nothing before the listing / HMDS start
        if start >= end:
            return []
        return self._period_bars(contract, bar_length(bar_size), start, end, what, use_rth)  # type: ignore[arg-type]

    def bar_table(self, contract: SimContract, bar_size: str, start: datetime, end: datetime, what_to_show: str,
                  use_rth: bool) -> _Arr | None:
        """The bars ``bars()`` returns, as arrays (no objects), for generated intraday sizes; None for replayed
        data and daily or longer bars. A 1-second history reply is 1,800 bars: objects were half its cost."""
        start, end = _utc(start), _utc(end)
        length = bar_length(bar_size)
        if (self.replay is not None and self.replay.serves(contract, bar_size)) or not isinstance(length, int):
            return None
        start = max(start, default_head_timestamp(contract))  # nothing before the listing / HMDS start
        if start >= end:
            return _concat([])
        return self._intraday_table(contract, length, start, end, what_to_show.upper(), use_rth)

    def _intraday_table(self, contract: SimContract, length: int, start: datetime, end: datetime, what: str,
                        use_rth: bool) -> _Arr:
        parts = []
        end_s = int(end.timestamp())
        bounds = [start.timestamp(), end.timestamp()]  # bars whose start lies in [start, end)
        for s in cal.sessions_between(contract.sec_type == "CASH", start - timedelta(seconds=length), end):
            if end_s >= int(s.bounds(use_rth)[1].timestamp()):
                arr = self._cached_session(contract, s, what, use_rth, length)
            else:  # the session in progress at ``end``: its last bar covers only the seconds before ``end``
                arr = self._intraday(contract, s, what, use_rth, length, end_s)
            parts.append(arr.take(slice(*np.searchsorted(arr.t, bounds))))
        return _concat(parts)

    def _cached_session(self, contract: SimContract, s: Session, what: str, use_rth: bool, length: int) -> _Arr:
        """A complete session's bars as arrays, kept for repeated requests (arrays, not objects: nothing for the
        garbage collector to walk, which stalled replies by 100-200 ms when whole sessions were kept as objects)."""
        key = (contract.local_symbol, s.label, what, use_rth, length)
        hit = self._bars.get(key)
        if hit is None:
            hit = self._bars[key] = self._intraday(contract, s, what, use_rth, length, int(s.close.timestamp()))
            self._cached_bars += len(hit)
            while self._cached_bars > self._BAR_CACHE and len(self._bars) > 1:
                self._cached_bars -= len(self._bars.popitem(last=False)[1])
        else:
            self._bars.move_to_end(key)
        return hit

    def _period_bars(self, contract: SimContract, period: str, start: datetime, end: datetime, what: str,
                     use_rth: bool) -> list[SimBar]:
        """Daily, weekly (Monday–Friday) or monthly bars built from per-session totals."""
        lead = {"D": timedelta(days=1), "W": timedelta(days=8), "M": timedelta(days=32)}[period]
        end_s = int(end.timestamp())
        rows, keys = [], []
        for s in cal.sessions_between(contract.sec_type == "CASH", start - lead, end):
            if int(s.bounds(use_rth)[0].timestamp()) >= end_s:
                continue
            r = self._session_row(contract, s, what, use_rth, end_s)
            if not np.isnan(r[0]):
                rows.append(r)
                monday = s.label - timedelta(days=s.label.weekday())
                keys.append({"D": s.label.toordinal(), "W": monday.toordinal(),
                             "M": s.label.year * 12 + s.label.month}[period])
        if not rows:
            return []
        joined = rows_to_arr(np.stack(rows))
        if period != "D":
            group_key = np.asarray(keys, dtype=np.int64)
            idx = np.flatnonzero(np.diff(group_key, prepend=group_key[0] - 1))
            labels = np.repeat(joined.t[idx], np.diff(np.r_[idx, len(group_key)]))
            joined = _aggregate(joined, labels, what == "BID_ASK")
        bars = _to_bars(joined)
        return [b for b in bars if start <= b.start < end]

    def quote(self, contract: SimContract, t: datetime) -> Quote:
        """Bid/ask/last prevailing at ``t`` (tz-aware); outside sessions, the previous session's closing state."""
        t = _utc(t)
        is_fx = contract.sec_type == "CASH"
        s = cal.session_at(is_fx, t)
        if s is None:
            s = cal.last_session_before(is_fx, t)
            if s is None:
                raise ValueError(f"no session before {t:%Y-%m-%d}")
            t_rel = float(int(s.close.timestamp()) - int(s.open.timestamp())) - 1e-6
        else:
            t_rel = t.timestamp() - int(s.open.timestamp())
        day = self._day(contract, s)
        j = min(int(t_rel * QUOTES_PER_S), len(day.bid) - 1)
        inv = _price_scale(day.tick)
        last, last_size = self._last_trade(contract, day, t_rel)
        bid_size, ask_size = day.quote_sizes()
        return Quote(t, float(day.bid[j] / inv), float(day.ask[j] / inv), last, float(bid_size[j]),
                     float(ask_size[j]), last_size)

    def _last_trade(self, contract: SimContract, day: _Day, t_rel: float) -> tuple[float, float]:
        if contract.sec_type == "CASH":
            return float("nan"), 0.0
        k = np.searchsorted(day.trade_times(), t_rel, side="right") - 1
        if k >= 0:
            return float(day.trade_px[k] / _price_scale(day.tick)), float(day.trade_size[k])
        prev = cal.last_session_before(False, day.session.open - timedelta(microseconds=1))
        if prev is None:
            return float("nan"), 0.0
        pday = self._day(contract, prev)
        return self._last_trade(contract, pday, float(pday.n_seconds))

    def ticks(self, contract: SimContract, start: datetime, end: datetime) -> list[SimTick]:
        """Trades in ``[start, end)`` with their prevailing quotes; they aggregate exactly into the 1-second
        TRADES bars (first = open, extremes = high/low, last = close, sizes sum to volume). Forex: none."""
        start, end = _utc(start), _utc(end)
        out: list[SimTick] = []
        if contract.sec_type == "CASH":
            return out
        for s in cal.sessions_between(False, start, end):
            day = self._day(contract, s)
            rel = day.trade_times()
            i, j = np.searchsorted(rel, [start.timestamp() - day.t0, end.timestamp() - day.t0])
            out.extend(self._make_ticks(day, i, j))
        return [x for x in out if start <= x.time < end]

    @staticmethod
    def _make_ticks(day: _Day, i: int, j: int) -> list[SimTick]:
        inv = _price_scale(day.tick)
        sec, off = day.trade_sec[i:j], day.trade_off[i:j]
        state = sec * QUOTES_PER_S + np.minimum((off * QUOTES_PER_S).astype(np.int64), QUOTES_PER_S - 1)
        micros = np.minimum((off * 1e6).astype(np.int64), 999_999)
        base = datetime.fromtimestamp(day.t0, UTC)
        bid_size, ask_size = day.quote_sizes()
        return [
            SimTick(base + timedelta(seconds=int(s_), microseconds=int(us)), p, z, b, a, bz, az)
            for s_, us, p, z, b, a, bz, az in zip(
                sec.tolist(), micros.tolist(), (day.trade_px[i:j] / inv).tolist(), day.trade_size[i:j].tolist(),
                (day.bid[state] / inv).tolist(), (day.ask[state] / inv).tolist(),
                bid_size[state].tolist(), ask_size[state].tolist(), strict=True)
        ]

    def is_open(self, contract: SimContract, t: datetime, use_rth: bool) -> bool:
        """True if the market trades at ``t`` (regular hours only if ``use_rth``)."""
        return cal.is_open(contract.sec_type == "CASH", _utc(t), use_rth)

    def head_timestamp(self, contract: SimContract, what_to_show: str, use_rth: bool) -> datetime:
        """The earliest bar IB has for the contract (fixed per symbol, UTC), e.g. SPY 1993-01-29 14:30 UTC."""
        if self.replay is not None and self.replay.serves(contract, None):
            return self.replay.head(contract)
        return default_head_timestamp(contract)
