"""PostgreSQL side of bars I/O, on the psycopg2 connection under the caller's SQLAlchemy transaction.

Writes: binary COPY straight into ``ibkr_data.bars`` when the batch's key range holds no row yet (an indexed
EXISTS decides); otherwise COPY into a temp staging table and merge: one join keeps the rows that are missing or
whose values differ (IS DISTINCT FROM), then only those are UPDATEd / INSERTed, so re-ingesting identical rows
costs one COPY and one join. A direct COPY that collides with a concurrent writer (unique
violation) is rolled back to a savepoint and redone through the merge.
Reads: ``COPY (SELECT ...) TO STDOUT (FORMAT binary)`` decoded with numpy into preallocated arrays.
"""

from __future__ import annotations

import io
from datetime import datetime

import numpy as np
import psycopg2.errors
from sqlalchemy.engine import Connection

from ibkrtool.store.pgcopy import (
    BAR_COPY_COLUMNS,
    STAGE_COPY_COLUMNS,
    VALUE_COLUMNS,
    FixedRecordSink,
    PayloadReader,
    decode_fixed,
    encode_bars,
)
from ibkrtool.store.types import from_epoch_us

_VALUES = VALUE_COLUMNS
_KEY = "conid = %(conid)s AND bar_size = %(size)s AND what_to_show = %(what)s"
_COPY_BUFFER = 1 << 20


def write(conn: Connection, conid: int, size: str, what: str, ts_us: np.ndarray, values: dict[str, np.ndarray]
          ) -> tuple[int, int, int]:
    """Upsert one series' bars; returns ``(inserted, updated, unchanged)``."""
    cur = conn.connection.driver_connection.cursor()
    lo, hi = from_epoch_us(int(ts_us[0])), from_epoch_us(int(ts_us[-1]))
    params = {"conid": conid, "size": size, "what": what, "lo": lo, "hi": hi}
    if range_is_empty(cur, params):
        cur.execute("SAVEPOINT ibkrtool_bars_copy")
        try:
            _copy(cur, "ibkr_data.bars", BAR_COPY_COLUMNS, encode_bars(ts_us, values, key=(conid, size, what)))
        except psycopg2.errors.UniqueViolation:  # a concurrent writer got there first
            cur.execute("ROLLBACK TO SAVEPOINT ibkrtool_bars_copy")
        else:
            cur.execute("RELEASE SAVEPOINT ibkrtool_bars_copy")
            return len(ts_us), 0, 0
    return _merge(cur, encode_bars(ts_us, values), params, len(ts_us))


def range_is_empty(cur: psycopg2.extensions.cursor, params: dict) -> bool:
    """True if the series has no stored bar between the batch's first and last bar (one primary-key probe)."""
    cur.execute(f"SELECT EXISTS (SELECT 1 FROM ibkr_data.bars WHERE {_KEY} AND ts BETWEEN %(lo)s AND %(hi)s)", params)
    return not cur.fetchone()[0]


def _copy(cur: psycopg2.extensions.cursor, table: str, columns: tuple[str, ...], payload: PayloadReader) -> None:
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT binary)"
    cur.copy_expert(sql, payload.rewind(), size=_COPY_BUFFER)


_STORED = "b.conid = %(conid)s AND b.bar_size = %(size)s AND b.what_to_show = %(what)s AND b.ts BETWEEN %(lo)s AND " \
          "%(hi)s"
_SET = f"({', '.join(_VALUES)}) = ({', '.join(f'd.{c}' for c in _VALUES)})"


def _merge(cur: psycopg2.extensions.cursor, payload: PayloadReader, params: dict, rows: int) -> tuple[int, int, int]:
    """Stage the batch, keep only rows that are new or differ (one join), then apply just those."""
    cur.execute("SHOW work_mem")
    work_mem = cur.fetchone()[0]
    cur.execute("SELECT set_config('work_mem', '256MB', true)")  # one in-memory hash join, no spill batches
    cur.execute("DROP TABLE IF EXISTS pg_temp.bars_stage, pg_temp.bars_diff")
    cur.execute("CREATE TEMP TABLE bars_stage (ts timestamptz NOT NULL, open float8, high float8, low float8, "
                "close float8, volume float8, wap float8, bar_count int8) ON COMMIT DROP")
    _copy(cur, "bars_stage", STAGE_COPY_COLUMNS, payload)
    stored = ", ".join(f"b.{c}" for c in _VALUES)
    staged = ", ".join(f"s.{c}" for c in _VALUES)
    cur.execute(
        f"CREATE TEMP TABLE bars_diff ON COMMIT DROP AS SELECT s.*, b.ts IS NULL AS missing FROM bars_stage s "
        f"LEFT JOIN ibkr_data.bars b ON {_STORED} AND b.ts = s.ts "
        f"WHERE b.ts IS NULL OR ({stored}) IS DISTINCT FROM ({staged})", params)
    changed = cur.rowcount
    inserted = updated = 0
    if changed:
        cur.execute(f"UPDATE ibkr_data.bars b SET {_SET} FROM bars_diff d "
                    f"WHERE NOT d.missing AND {_STORED} AND b.ts = d.ts", params)
        updated = cur.rowcount
        cur.execute(
            f"INSERT INTO ibkr_data.bars ({', '.join(BAR_COPY_COLUMNS)}) "
            f"SELECT %(conid)s, %(size)s, %(what)s, ts, {', '.join(_VALUES)} FROM bars_diff WHERE missing "
            f"ON CONFLICT (conid, bar_size, what_to_show, ts) DO UPDATE SET "
            f"({', '.join(_VALUES)}) = ({', '.join(f'EXCLUDED.{c}' for c in _VALUES)})", params)
        inserted = cur.rowcount
    cur.execute("DROP TABLE bars_stage, bars_diff")
    cur.execute("SELECT set_config('work_mem', %s, true)", (work_mem,))
    return inserted, updated, rows - inserted - updated


def read(conn: Connection, conid: int, size: str, what: str, start: datetime | None, end: datetime | None,
         whole: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(ts_us, block)`` of one series, ``start <= ts < end``: Unix microseconds and a (7, rows) float64 block,
    in time order.

    NULLs are sent as NaN so every record has the same size and numpy decodes them without per-row Python work.
    The query has no ORDER BY: the server's ordered merge of the monthly partitions cost about 30 % of a year's
    read, while the rows arrive in time order anyway (partitions are scanned in bound order and filled in time
    order), so order is checked here and the rows sorted only when it does not hold.
    """
    cur = conn.connection.driver_connection.cursor()
    where = (f"{_KEY} AND ts >= COALESCE(%(lo)s::timestamptz, '-infinity') "
             "AND ts < COALESCE(%(hi)s::timestamptz, 'infinity')")
    params = {"conid": conid, "size": size, "what": what, "lo": start, "hi": end}
    nan = "'NaN'::float8"
    select = (f"SELECT ts, open, high, low, close, COALESCE(volume, {nan}), COALESCE(wap, {nan}), "
              f"COALESCE(bar_count::float8, {nan}) FROM ibkr_data.bars WHERE {where}")
    sql = cur.mogrify(f"COPY ({select}) TO STDOUT (FORMAT binary)", params).decode()
    if whole:
        buffer = io.BytesIO()  # its C ``write`` costs less per row than any Python sink
        cur.copy_expert(sql, buffer)
        ts_us, block = decode_fixed(buffer.getbuffer(), len(_VALUES))
    else:
        sink = FixedRecordSink(len(_VALUES))
        cur.copy_expert(sql, sink)
        ts_us, block = sink.result()
    if len(ts_us) > 1 and not bool(np.all(ts_us[1:] > ts_us[:-1])):
        order = np.argsort(ts_us, kind="stable")
        ts_us, block = ts_us[order], block[:, order]
    return ts_us, block
