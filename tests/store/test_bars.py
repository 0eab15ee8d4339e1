"""Bulk writes and reads of bars, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ibkrtool.errors import InputError, StoreError
from ibkrtool.store import pgbars
from ibkrtool.store import tables as t
from ibkrtool.store.bars import WriteResult, list_series, read_bars, write_bars
from ibkrtool.store.coverage import CoverageRange, covered_ranges
from ibkrtool.store.engine import is_postgres, open_engine
from tests.store.conftest import make_bars

UTC = timezone.utc


def _count(engine: Engine, table: sa.Table = t.bars) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def _same(left: pd.DataFrame, right: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(left, right, check_index_type=False, check_freq=False)
    assert str(left.index.tz) == "UTC" and left.index.name == "ts"


def test_round_trip_keeps_values_and_unknowns(engine: Engine) -> None:
    bars = make_bars(500)
    bars.iloc[3, bars.columns.get_loc("wap")] = np.nan
    bars.iloc[4, bars.columns.get_loc("volume")] = -1  # IB's "unknown" → NaN
    bars.iloc[5, bars.columns.get_loc("bar_count")] = np.nan
    assert write_bars(engine, 756733, "1s", "TRADES", bars) == WriteResult(500, 0, 0)
    back = read_bars(engine, 756733, "1 secs", "trades")
    expected = bars.copy()
    expected.iloc[4, expected.columns.get_loc("volume")] = np.nan
    _same(back, expected)
    assert list(back.dtypes.unique()) == [np.dtype("float64")]


def test_series_without_wap_and_count_round_trips(engine: Engine) -> None:
    bars = make_bars(50).assign(volume=np.nan, wap=np.nan, bar_count=np.nan)
    write_bars(engine, 12087792, "5s", "MIDPOINT", bars[["open", "high", "low", "close"]])
    _same(read_bars(engine, 12087792, "5s", "MIDPOINT"), bars)


def test_rewrite_of_identical_bars_changes_nothing(engine: Engine) -> None:
    bars = make_bars(300)
    write_bars(engine, 1, "1s", "TRADES", bars)
    assert write_bars(engine, 1, "1s", "TRADES", bars) == WriteResult(0, 0, 300)
    assert _count(engine) == 300


def test_last_write_wins_and_counts_each_kind(engine: Engine) -> None:
    bars = make_bars(100)
    write_bars(engine, 1, "1s", "TRADES", bars)
    revised = pd.concat([bars, make_bars(10, start="2024-01-02 14:31:40", seed=7)])
    revised.iloc[:5, revised.columns.get_loc("close")] += 0.5
    revised.iloc[6, revised.columns.get_loc("wap")] = np.nan  # a value becoming unknown is a change too
    assert write_bars(engine, 1, "1s", "TRADES", revised) == WriteResult(10, 6, 94)
    _same(read_bars(engine, 1, "1s", "TRADES"), revised)


def test_series_are_kept_apart(engine: Engine) -> None:
    bars = make_bars(20)
    write_bars(engine, 1, "1s", "TRADES", bars)
    write_bars(engine, 1, "1s", "BID", bars * 2)
    write_bars(engine, 2, "1s", "TRADES", bars + 1)
    _same(read_bars(engine, 1, "1s", "BID"), bars * 2)
    assert [(s["conid"], s["what_to_show"], s["rows"]) for s in list_series(engine)] == [
        (1, "BID", 20), (1, "TRADES", 20), (2, "TRADES", 20)]
    first = list_series(engine)[0]["first"]
    assert first == datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def test_read_range_is_half_open_and_empty_reads_are_frames(engine: Engine) -> None:
    bars = make_bars(60)
    write_bars(engine, 1, "1s", "TRADES", bars)
    start, end = bars.index[10].to_pydatetime(), bars.index[20].to_pydatetime()
    _same(read_bars(engine, 1, "1s", "TRADES", start, end), bars.iloc[10:20])
    empty = read_bars(engine, 99, "1s", "TRADES")
    assert empty.empty and list(empty.columns) == list(bars.columns) and str(empty.index.tz) == "UTC"


def test_write_spanning_new_months_creates_partitions(engine: Engine) -> None:
    bars = pd.concat([make_bars(5, start="2024-01-31 23:59:58"), make_bars(3, start="2024-03-15")])
    assert write_bars(engine, 1, "1s", "TRADES", bars).inserted == 8
    _same(read_bars(engine, 1, "1s", "TRADES"), bars)
    if is_postgres(engine):
        with engine.connect() as conn:
            names = set(conn.execute(sa.text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'ibkr_data.bars'::regclass")).scalars())
            in_default = conn.execute(sa.text("SELECT count(*) FROM ibkr_data.bars_default")).scalar()
        assert {"bars_2024_01", "bars_2024_02", "bars_2024_03", "bars_default"} <= names
        assert in_default == 0


def test_default_partition_rows_move_into_the_new_month(pg_store: Engine) -> None:
    engine = pg_store  # PostgreSQL only: SQLite has no partitions
    stray = make_bars(3, start="2024-06-10")
    with engine.begin() as conn:  # rows of a month without a partition land in the DEFAULT partition
        for ts, row in stray.iterrows():
            conn.execute(sa.insert(t.bars).values(conid=1, bar_size="1s", what_to_show="TRADES", ts=ts.to_pydatetime(),
                                                  **row.to_dict()))
        assert conn.execute(sa.text("SELECT count(*) FROM ibkr_data.bars_default")).scalar() == 3
    new = make_bars(4, start="2024-06-10 00:00:02", seed=3)  # overlaps the last stray bar, revises it
    result = write_bars(engine, 1, "1s", "TRADES", new)
    assert result == WriteResult(3, 1, 0)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM ibkr_data.bars_default")).scalar() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM ibkr_data.bars_2024_06")).scalar() == 6
    _same(read_bars(engine, 1, "1s", "TRADES"), pd.concat([stray.iloc[:2], new]))


def test_copy_collision_falls_back_to_merge(pg_store: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = pg_store  # PostgreSQL only: SQLite has no COPY path
    bars = make_bars(30)
    write_bars(engine, 1, "1s", "TRADES", bars.iloc[10:20])
    # As if a concurrent writer committed these rows after our emptiness probe: the direct COPY collides.
    monkeypatch.setattr(pgbars, "range_is_empty", lambda cur, params: True)
    assert write_bars(engine, 1, "1s", "TRADES", bars) == WriteResult(20, 0, 10)
    _same(read_bars(engine, 1, "1s", "TRADES"), bars)


def test_coverage_is_written_in_the_same_transaction(engine: Engine) -> None:
    bars = make_bars(10)
    start, end = bars.index[0].to_pydatetime(), bars.index[-1].to_pydatetime()
    good = CoverageRange(start, end, source="ib", bars_received=10)
    write_bars(engine, 1, "1s", "TRADES", bars, coverage=good)
    assert covered_ranges(engine, 1, "1s", "TRADES") == [(start, end)]
    broken = CoverageRange(end, end, source=None, bars_received=5)  # type: ignore[arg-type]  # NOT NULL violation
    with pytest.raises(StoreError, match="conid 2"):
        write_bars(engine, 2, "1s", "TRADES", make_bars(5, start="2024-01-03"), coverage=broken)
    assert _count(engine) == 10
    assert _count(engine, t.coverage) == 1


def test_callers_transaction_owns_the_write(engine: Engine) -> None:
    with pytest.raises(RuntimeError), engine.begin() as conn:
        write_bars(conn, 1, "1s", "TRADES", make_bars(10, start="2024-07-01"))
        raise RuntimeError("the caller fails after the write")
    assert _count(engine) == 0


def test_malformed_frames_are_refused(engine: Engine) -> None:
    naive = make_bars(3).tz_localize(None)
    with pytest.raises(InputError, match="naive"):
        write_bars(engine, 1, "1s", "TRADES", naive)
    doubled = pd.concat([make_bars(3), make_bars(1)])
    with pytest.raises(InputError, match="duplicate bar timestamp"):
        write_bars(engine, 1, "1s", "TRADES", doubled)
    with pytest.raises(InputError, match="bar size"):
        write_bars(engine, 1, "7 fortnights", "TRADES", make_bars(3))
    assert _count(engine) == 0


def test_ctrl_c_mid_write_leaves_the_database_as_it_was(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    write_bars(engine, 1, "1s", "TRADES", make_bars(10))
    before = read_bars(engine, 1, "1s", "TRADES")

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # arrives after the bars went in, before the coverage row and the commit

    monkeypatch.setattr("ibkrtool.store.bars.record_coverage", interrupted)
    revised = pd.concat([make_bars(10) + 1, make_bars(50, start="2024-02-05")])
    rng = CoverageRange(revised.index[0].to_pydatetime(), revised.index[-1].to_pydatetime())
    with pytest.raises(KeyboardInterrupt):
        write_bars(engine, 1, "1s", "TRADES", revised, coverage=rng)
    _same(read_bars(engine, 1, "1s", "TRADES"), before)
    assert _count(engine, t.coverage) == 0


def test_reads_come_back_in_time_order_whatever_the_write_order(engine: Engine) -> None:
    # Later bars stored first, then earlier ones of the same month: the heap holds them out of time order. On
    # PostgreSQL a sequential scan is forced, so the rows reach the reader (which does not ask the server to sort)
    # in heap order; it must still return them sorted.
    bars = make_bars(120)
    write_bars(engine, 7, "1s", "TRADES", bars.iloc[60:])
    write_bars(engine, 7, "1s", "TRADES", bars.iloc[:60])
    reader = engine
    if is_postgres(engine):
        scan_heap = "-c enable_indexscan=off -c enable_indexonlyscan=off -c enable_bitmapscan=off"
        reader = open_engine(engine.url.update_query_dict({"options": scan_heap}))
    out = read_bars(reader, 7, "1s", "TRADES")
    assert out.index.is_monotonic_increasing and out.index.is_unique
    _same(out, bars)
