"""Bars in the database: bulk idempotent writes and fast reads, on SQLite and PostgreSQL.

Re-fetched bars: **last write wins**. IB revises recent bars (late trades, corrections), so a bar written again
with different values replaces the stored one; identical values are left untouched and counted as unchanged.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import psycopg2
from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from ibkrtool.errors import StoreError
from ibkrtool.model import BAR_COLUMNS, BarSize, WhatToShow
from ibkrtool.store import pgbars
from ibkrtool.store import tables as t
from ibkrtool.store.coverage import CoverageRange, record_coverage
from ibkrtool.store.engine import is_postgres
from ibkrtool.store.frames import bars_frame, checked_bars, empty_bars, epoch_us
from ibkrtool.store.partitions import ensure_partitions
from ibkrtool.store.types import from_epoch_us, to_epoch_us

# Raw driver cursors (COPY, executemany) raise the driver's own errors, not SQLAlchemy's wrappers.
DB_ERRORS = (DBAPIError, psycopg2.Error, sqlite3.Error)


@dataclass(frozen=True)
class WriteResult:
    """Rows of one write: new, replaced by different values, and already stored identically."""

    inserted: int
    updated: int
    unchanged: int

    @property
    def written(self) -> int:
        return self.inserted + self.updated


def _series(bar_size: str | BarSize, what_to_show: str | WhatToShow) -> tuple[str, str]:
    size = bar_size if isinstance(bar_size, BarSize) else BarSize.parse(bar_size)
    what = what_to_show if isinstance(what_to_show, WhatToShow) else WhatToShow.parse(what_to_show)
    return str(size), what.value


def write_bars(bind: Engine | Connection, conid: int, bar_size: str | BarSize, what_to_show: str | WhatToShow,
               bars: pd.DataFrame, coverage: CoverageRange | None = None) -> WriteResult:
    """Upsert ``bars`` (the bars frame convention, UTC) of one series, plus an optional coverage row, in ONE
    transaction: all or nothing, also on Ctrl-C. Idempotent; changed bars are replaced (last write wins).

    Given an Engine, the transaction is ours (PostgreSQL month partitions are created just before, in their own
    short transaction); given a Connection, everything runs in the caller's transaction.
    Raises ``InputError`` for malformed bars, ``StoreError`` if the database refuses the write.
    """
    size, what = _series(bar_size, what_to_show)
    frame = checked_bars(bars)
    try:
        if isinstance(bind, Connection):
            return _write(bind, int(conid), size, what, frame, coverage, partitions=True)
        if is_postgres(bind) and len(frame):
            with bind.begin() as conn:
                ensure_partitions(conn, frame.index[0].to_pydatetime(), frame.index[-1].to_pydatetime())
        with bind.begin() as conn:
            return _write(conn, int(conid), size, what, frame, coverage, partitions=False)
    except DB_ERRORS as exc:
        raise StoreError(f"writing {len(frame)} {size} {what} bars of conid {conid} failed: {_line(exc)}") from None


def _write(conn: Connection, conid: int, size: str, what: str, frame: pd.DataFrame, coverage: CoverageRange | None,
           partitions: bool) -> WriteResult:
    result = WriteResult(0, 0, 0)
    if len(frame):
        ts_us = epoch_us(frame.index)
        values = {c: frame[c].to_numpy() for c in BAR_COLUMNS}
        if is_postgres(conn):
            if partitions:
                ensure_partitions(conn, frame.index[0].to_pydatetime(), frame.index[-1].to_pydatetime())
            result = WriteResult(*pgbars.write(conn, conid, size, what, ts_us, values))
        else:
            result = _write_sqlite(conn, conid, size, what, ts_us, values)
    if coverage is not None:
        record_coverage(conn, conid, size, what, coverage)
    return result


_SQLITE_UPSERT = (
    "INSERT INTO bars (conid, bar_size, what_to_show, ts, open, high, low, close, volume, wap, bar_count) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (conid, bar_size, what_to_show, ts) DO UPDATE SET "
    "open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close, "
    "volume = excluded.volume, wap = excluded.wap, bar_count = excluded.bar_count "
    "WHERE (bars.open, bars.high, bars.low, bars.close, bars.volume, bars.wap, bars.bar_count) IS NOT "
    "(excluded.open, excluded.high, excluded.low, excluded.close, excluded.volume, excluded.wap, excluded.bar_count)"
)


def _sqlite_column(values: np.ndarray, integer: bool) -> list:
    """Python values for SQLite binding, NaN as NULL; list-based because a fast backfill writes dozens a second."""
    missing = np.isnan(values)
    column = (np.where(missing, 0, values).astype(np.int64) if integer else values).tolist()
    for i in np.flatnonzero(missing).tolist():
        column[i] = None
    return column


def _write_sqlite(conn: Connection, conid: int, size: str, what: str, ts_us: np.ndarray,
                  values: dict[str, np.ndarray]) -> WriteResult:
    """executemany upsert; counts come from the series' row count and SQLite's change counter."""
    raw = conn.connection.driver_connection
    span = (conid, size, what, int(ts_us[0]), int(ts_us[-1]))
    count_sql = "SELECT count(*) FROM bars WHERE conid = ? AND bar_size = ? AND what_to_show = ? AND ts BETWEEN ? AND ?"
    before = raw.execute(count_sql, span).fetchone()[0]
    changes = raw.total_changes
    columns = [_sqlite_column(values[c], integer=c == "bar_count") for c in BAR_COLUMNS]
    rows = zip([conid] * len(ts_us), [size] * len(ts_us), [what] * len(ts_us), ts_us.tolist(), *columns, strict=True)
    cur = raw.cursor()
    cur.executemany(_SQLITE_UPSERT, rows)
    cur.close()
    changed = raw.total_changes - changes
    inserted = raw.execute(count_sql, span).fetchone()[0] - before
    return WriteResult(inserted, changed - inserted, len(ts_us) - changed)


def read_bars(engine: Engine, conid: int, bar_size: str | BarSize, what_to_show: str | WhatToShow,
              start: datetime | None = None, end: datetime | None = None, whole: bool = False) -> pd.DataFrame:
    """Bars of one series with ``start <= ts < end`` (tz-aware; either bound optional) as a bars frame.

    On PostgreSQL this streams a binary COPY into preallocated numpy arrays; ``whole=True`` buffers the payload
    first (less CPU, twice the memory: for bounded ranges). Raises ``StoreError``.
    """
    size, what = _series(bar_size, what_to_show)
    lo = to_epoch_us(start) if start is not None else None
    hi = to_epoch_us(end) if end is not None else None
    try:
        with engine.connect() as conn:
            if is_postgres(conn):
                ts_us, block = pgbars.read(conn, int(conid), size, what, start, end, whole)
            else:
                ts_us, block = _read_sqlite(conn, int(conid), size, what, lo, hi)
    except DB_ERRORS as exc:
        raise StoreError(f"reading {size} {what} bars of conid {conid} failed: {_line(exc)}") from None
    return bars_frame(ts_us, block) if len(ts_us) else empty_bars()


def _read_sqlite(conn: Connection, conid: int, size: str, what: str, lo: int | None, hi: int | None
                 ) -> tuple[np.ndarray, np.ndarray]:
    sql = ("SELECT ts, open, high, low, close, volume, wap, bar_count FROM bars "
           "WHERE conid = ? AND bar_size = ? AND what_to_show = ? AND ts >= ? AND ts < ? ORDER BY ts")
    bounds = (lo if lo is not None else -(2**63), hi if hi is not None else 2**63 - 1)
    rows = conn.connection.driver_connection.execute(sql, (conid, size, what, *bounds)).fetchall()
    ts_us = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    block = np.array([r[1:] for r in rows], dtype=np.float64).reshape(len(rows), len(BAR_COLUMNS)).T.copy()
    return ts_us, block


def list_series(engine: Engine) -> list[dict]:
    """One dict per stored series: conid, bar_size, what_to_show, rows, first, last (UTC bar starts)."""
    b = t.bars.c
    query = (select(b.conid, b.bar_size, b.what_to_show, func.count().label("rows"), func.min(b.ts), func.max(b.ts))
             .group_by(b.conid, b.bar_size, b.what_to_show).order_by(b.conid, b.bar_size, b.what_to_show))
    try:
        with engine.connect() as conn:
            rows = conn.execute(query).all()
    except DB_ERRORS as exc:
        raise StoreError(f"listing stored series failed: {_line(exc)}") from None
    return [{"conid": r[0], "bar_size": r[1], "what_to_show": r[2], "rows": r[3], "first": _utc(r[4]),
             "last": _utc(r[5])} for r in rows]


def _utc(value: object) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return from_epoch_us(int(value))  # SQLite aggregates bypass the column type


def _line(exc: Exception) -> str:
    text_ = str(getattr(exc, "orig", None) or exc).strip()
    return text_.splitlines()[0] if text_ else type(exc).__name__
