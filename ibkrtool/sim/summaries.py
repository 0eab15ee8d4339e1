"""Per-session summaries for daily, weekly and monthly bars, computed from a session's raw data once per process.

A summary is one bar over a session's (regular) hours: start (the open, epoch s), open, high, low, close, volume,
WAP, count and seconds covered (``bars._FIELDS``), for every whatToShow and both useRTH values.
Long-span requests (a year of daily bars is ~250 sessions, ten years of monthly bars ~2500) are dominated by
generating each session's quotes and trades (several ms a session); so when a complete session is first needed,
all its summaries (5 whatToShow × 2 useRTH) are taken from that one generation and kept, and no later daily,
weekly or monthly request — in any ``Market`` of this process with the same seed, the data being deterministic —
generates that session again. A session still in progress at a request's ``end`` is summarised on the fly (its
summary depends on ``end``) and not kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import date

import numpy as np

from ibkrtool.sim.bars import _FIELDS, _Arr
from ibkrtool.sim.generator import QUOTES_PER_S, _Day, _price_scale

WHAT_TO_SHOW = ("TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK")
KINDS = tuple((what, rth) for rth in (True, False) for what in WHAT_TO_SHOW)  # row order of a summary table
KIND_INDEX = {kind: i for i, kind in enumerate(KINDS)}
SummaryKey = tuple[int, str, date]  # (seed, local symbol, session label)
_NO_DATA = np.full(len(_FIELDS), np.nan)
_NO_DATA.flags.writeable = False


def span_row(day: _Day, what: str, lo: int, hi: int) -> np.ndarray:
    """The bar over seconds ``[lo, hi)`` of ``day``, straight from the raw quotes/trades, as one float row in
    ``bars._FIELDS`` order; all NaN if the span has no data (e.g. no trades). The same numbers as aggregating its
    1-second bars, up to float rounding of WAP and time averages; much cheaper for daily bars."""
    inv = _price_scale(day.tick)
    if what == "TRADES":
        i, j = np.searchsorted(day.trade_sec, [lo, max(lo, hi)])
        if i == j:
            return _NO_DATA
        px, size = day.trade_px[i:j], day.trade_size[i:j]
        v = size.sum()
        return np.array([day.t0 + lo, px[0] / inv, px.max() / inv, px.min() / inv, px[-1] / inv, v,
                         (px / inv * size).sum() / v, j - i, hi - lo], dtype=np.float64)
    q = QUOTES_PER_S
    bid, ask = day.bid[lo * q:hi * q], day.ask[lo * q:hi * q]
    if len(bid) == 0:
        return _NO_DATA
    if what == "BID_ASK":
        o, h, low, c = bid.mean() / inv, ask.max() / inv, bid.min() / inv, ask.mean() / inv
    else:
        src, div = (bid + ask, 2 * inv) if what == "MIDPOINT" else ((bid, inv) if what == "BID" else (ask, inv))
        o, h, low, c = src[0] / div, src.max() / div, src.min() / div, src[-1] / div
    return np.array([day.t0 + lo, o, h, low, c, -1.0, -1.0, -1.0, hi - lo], dtype=np.float64)


def summarise(day: _Day) -> np.ndarray:
    """All summaries of the complete session ``day``: a read-only ``(len(KINDS), 9)`` table, rows in ``KINDS``
    order (look up with ``KIND_INDEX[(what, use_rth)]``), columns in ``bars._FIELDS`` order, NaN rows = no data."""
    table = np.empty((len(KINDS), len(_FIELDS)))
    for i, (what, rth) in enumerate(KINDS):
        lo, hi = (int(b.timestamp()) - day.t0 for b in day.session.bounds(rth))
        table[i] = span_row(day, what, lo, hi)
    table.flags.writeable = False
    return table


def rows_to_arr(rows: np.ndarray) -> _Arr:
    """Stacked summary rows ``(n, 9)`` (no NaN rows) → bar arrays, with the integer columns as int64."""
    cols = dict(zip(_FIELDS, rows.T, strict=True))
    for f in ("t", "n", "k"):
        cols[f] = cols[f].astype(np.int64)
    return _Arr(**cols)


class SessionSummaries:
    """Thread-safe LRU of summary tables keyed by ``(seed, local symbol, session label)``.

    ``max_sessions`` bounds memory (~1 kB a session: 50 000 sessions are ~20 symbols × 10 years, ~50 MB).
    """

    def __init__(self, max_sessions: int = 50_000) -> None:
        self.max_sessions = max_sessions
        self._tables: OrderedDict[SummaryKey, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.computed = 0  # sessions summarised (each one generation of the session's raw data)

    def get(self, key: SummaryKey) -> np.ndarray | None:
        """The table for ``key`` if kept (and marks it recently used)."""
        with self._lock:
            table = self._tables.get(key)
            if table is not None:
                self._tables.move_to_end(key)
            return table

    def put(self, key: SummaryKey, table: np.ndarray) -> None:
        """Keep ``table``; the least recently used tables go beyond ``max_sessions``."""
        with self._lock:
            self._tables[key] = table
            self.computed += 1
            while len(self._tables) > self.max_sessions:
                self._tables.popitem(last=False)

    def clear(self) -> None:
        """Forget every table (tests and benchmarks measure cold requests with it)."""
        with self._lock:
            self._tables.clear()

    def __len__(self) -> int:
        return len(self._tables)


SUMMARIES = SessionSummaries()  # shared by every Market of the process (keys carry the seed)
