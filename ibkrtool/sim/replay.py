"""Recorded bars served by the sim instead of generated ones.

A ``ReplaySource`` holds, per symbol, one series of bars of a base size (e.g. 1-minute) read from a bars CSV
(``ts,open,high,low,close,volume[,wap,bar_count]``, ``ts`` = bar start, ISO 8601 or epoch seconds, UTC) or from a
database written by ``ibkrtool`` (table ``ibkr_data.bars`` on PostgreSQL, ``bars`` on SQLite; read with text SQL so
the sim stays independent of ``ibkrtool.store``). Requests for that symbol at the base size or any multiple of it
(and daily, weekly, monthly) are answered by aggregating the recorded bars with the same alignment rules as the
generated market (see ``market.py``); the recorded series is served whatever the whatToShow (non-TRADES requests
get volume/WAP/count -1, as IB sends them).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from ibkrtool.sim import calendar as cal
from ibkrtool.sim.bars import _FIELDS, SimBar, _aggregate, _Arr, _to_bars, bar_length
from ibkrtool.sim.contracts import SimContract

_CANONICAL_TO_SECONDS = {"s": 1, "m": 60, "h": 3600}


def _label_seconds(label: str) -> int:
    """``"1m"`` (the database's bar_size label) or IB's ``"1 min"`` → seconds."""
    text = label.strip()
    if " " in text:
        length = bar_length(text)
        if not isinstance(length, int):
            raise ValueError(f"replay needs an intraday base bar size, got {label!r}")
        return length
    unit = text[-1]
    if not text[:-1].isdigit() or unit not in _CANONICAL_TO_SECONDS:
        raise ValueError(f"replay needs an intraday base bar size like 1m, got {label!r}")
    return int(text[:-1]) * _CANONICAL_TO_SECONDS[unit]


def _frame_to_arr(df: pd.DataFrame, base_s: int) -> _Arr:
    df = df.sort_values("ts").drop_duplicates("ts")
    ts = pd.to_datetime(df["ts"], utc=True)
    t = ((ts - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(dtype=np.int64)
    close = df["close"].to_numpy(dtype=float)
    vol = df["volume"].to_numpy(dtype=float) if "volume" in df else np.full(len(df), -1.0)
    vol = np.where(np.isnan(vol), -1.0, vol)
    wap = df["wap"].to_numpy(dtype=float) if "wap" in df else np.full(len(df), np.nan)
    wap = np.where(np.isnan(wap) | (wap < 0), close, wap)
    count = df["bar_count"].to_numpy(dtype=float) if "bar_count" in df else np.full(len(df), -1.0)
    count = np.where(np.isnan(count), -1, count).astype(np.int64)
    return _Arr(t, df["open"].to_numpy(dtype=float), df["high"].to_numpy(dtype=float),
                df["low"].to_numpy(dtype=float), close, vol, wap, count, np.full(len(df), base_s, dtype=np.int64))


class ReplaySource:
    """Recorded bar series keyed by IB symbol (``SPY``) or local symbol (``EUR.USD``)."""

    def __init__(self) -> None:
        self._series: dict[str, tuple[int, _Arr]] = {}

    def add_frame(self, symbol: str, bars: pd.DataFrame, bar_size: str) -> None:
        """Add a DataFrame with column ``ts`` (or a ``ts`` index) and OHLCV columns, base size ``bar_size``."""
        df = bars.reset_index() if "ts" not in bars.columns else bars
        base_s = _label_seconds(bar_size)
        self._series[symbol.upper()] = (base_s, _frame_to_arr(df, base_s))

    @classmethod
    def from_csv(cls, path: str | Path, symbol: str, bar_size: str) -> ReplaySource:
        """Read a bars CSV (``-`` is not accepted: the sim reads it once at start). Raises OSError/ValueError."""
        src = cls()
        df = pd.read_csv(path)
        if df["ts"].dtype.kind in "iu":
            df["ts"] = pd.to_datetime(df["ts"], unit="s", utc=True)
        src.add_frame(symbol, df, bar_size)
        return src

    @classmethod
    def from_database(cls, url: str, symbol: str, conid: int, bar_size: str,
                      what_to_show: str = "TRADES") -> ReplaySource:
        """Read one series from an ibkrtool database (``bar_size`` is the stored label, e.g. ``1m``)."""
        from sqlalchemy import create_engine, text

        if url.startswith(("postgresql://", "postgres://")):  # SQLAlchemy 2.1 would pick psycopg 3
            url = "postgresql+psycopg2://" + url.split("://", 1)[1]
        engine = create_engine(url)
        try:
            table = "bars" if engine.dialect.name == "sqlite" else "ibkr_data.bars"
            sql = text(f"SELECT ts, open, high, low, close, volume, wap, bar_count FROM {table} "
                       "WHERE conid = :conid AND bar_size = :bar_size AND what_to_show = :what ORDER BY ts")
            with engine.connect() as conn:
                df = pd.read_sql(sql, conn, params={"conid": conid, "bar_size": bar_size, "what": what_to_show})
        finally:
            engine.dispose()
        if engine.dialect.name == "sqlite":  # epoch microseconds there (see ibkrtool/store/types.py)
            df["ts"] = pd.to_datetime(df["ts"], unit="us", utc=True)
        src = cls()
        src.add_frame(symbol, df, bar_size)
        return src

    def _get(self, contract: SimContract) -> tuple[int, _Arr] | None:
        return self._series.get(contract.local_symbol.upper()) or self._series.get(contract.symbol.upper())

    def serves(self, contract: SimContract, bar_size: str | None) -> bool:
        """True if this source answers the contract (and the bar size, a multiple of the base or daily+)."""
        hit = self._get(contract)
        if hit is None or bar_size is None:
            return hit is not None
        length = bar_length(bar_size)
        return not isinstance(length, int) or length % hit[0] == 0

    def head(self, contract: SimContract) -> datetime:
        """Start of the first recorded bar (UTC)."""
        hit = self._get(contract)
        if hit is None or len(hit[1]) == 0:
            raise KeyError(contract.local_symbol)
        return datetime.fromtimestamp(int(hit[1].t[0]), UTC)

    def bars(self, contract: SimContract, bar_size: str, start: datetime, end: datetime, what: str,
             use_rth: bool) -> list[SimBar]:
        """Recorded bars aggregated to ``bar_size`` whose start is in ``[start, end)``, inside sessions."""
        hit = self._get(contract)
        if hit is None:
            return []
        arr = hit[1]
        length = bar_length(bar_size)
        is_fx = contract.sec_type == "CASH"
        parts, keys = [], []
        lead = timedelta(days=32) if not isinstance(length, int) else timedelta(seconds=length)
        for s in cal.sessions_between(is_fx, start - lead, end):
            lo, hi = (int(b.timestamp()) for b in s.bounds(use_rth))
            i, j = np.searchsorted(arr.t, [lo, min(hi, int(end.timestamp()))])
            rows = arr.take(slice(i, j))
            if len(rows) == 0:
                continue
            if isinstance(length, int):
                offset = int(s.open.astimezone(cal.NEW_YORK).utcoffset().total_seconds())
                labels = np.maximum((rows.t + offset) // length * length - offset, lo)
            else:
                labels = np.full(len(rows), lo, dtype=np.int64)
                monday = s.label - timedelta(days=s.label.weekday())
                keys.append({"D": s.label.toordinal(), "W": monday.toordinal(),
                             "M": s.label.year * 12 + s.label.month}[length])
            parts.append(_aggregate(rows, labels, what == "BID_ASK"))
        if not parts:
            return []
        joined = _Arr(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))
        if not isinstance(length, int) and length != "D":
            group = np.asarray(keys, dtype=np.int64)
            idx = np.flatnonzero(np.diff(group, prepend=group[0] - 1))
            joined = _aggregate(joined, np.repeat(joined.t[idx], np.diff(np.r_[idx, len(group)])), what == "BID_ASK")
        if what != "TRADES":
            neg = np.full(len(joined), -1.0)
            joined = _Arr(joined.t, joined.o, joined.h, joined.low, joined.c, neg, neg,
                          np.full(len(joined), -1, dtype=np.int64), joined.k)
        return [b for b in _to_bars(joined) if start <= b.start < end]
