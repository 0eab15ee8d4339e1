"""resample_stored: chunked (parallel on PostgreSQL) reads of a stored series give exactly the one-shot result."""

from __future__ import annotations

import itertools
from datetime import date

import numpy as np
import pandas as pd
import pytest

from ibkrtool.calendars import sessions
from ibkrtool.data import resample as rs
from ibkrtool.errors import InputError
from ibkrtool.model import BAR_COLUMNS, BarSize, Instrument
from ibkrtool.store.bars import write_bars
from ibkrtool.store.engine import open_engine
from ibkrtool.store.migrate import init_db

EURUSD = Instrument.parse("EUR.USD")


def forex_minutes() -> pd.DataFrame:
    """Every minute of two forex weeks (sessions run 17:00→17:00 New York, across midnight UTC)."""
    days = sessions(EURUSD, date(2026, 11, 9), date(2026, 11, 20))
    index = pd.DatetimeIndex(np.concatenate([pd.date_range(s.open, s.close, freq="1min", inclusive="left")
                                             for s in days]), name="ts").as_unit("us")
    index = index.tz_localize("UTC") if index.tz is None else index
    close = 1.08 + np.random.default_rng(2).normal(0, 1e-4, len(index)).cumsum()
    return pd.DataFrame({"open": close, "high": close + 5e-5, "low": close - 5e-5, "close": close}, index=index)


@pytest.mark.parametrize("target", ["1h", "1d", "1w"])
def test_chunked_store_resample_equals_one_shot(db_url, monkeypatch, target):
    monkeypatch.setattr(rs, "DAYS_PER_CHUNK", 2)  # several chunks, each cut where no session runs
    engine = open_engine(db_url)
    init_db(engine)
    bars = forex_minutes()
    write_bars(engine, 12087792, "1m", "MIDPOINT", bars)
    size = BarSize.parse(target)
    got, rows = rs.resample_stored(engine, 12087792, EURUSD, BarSize.parse("1m"), size, "MIDPOINT")
    want = rs.resample_bars(bars, BarSize.parse("1m"), size, sessions(EURUSD, date(2026, 11, 1), date(2026, 11, 30)))
    assert rows == len(bars)
    pd.testing.assert_index_equal(got.index, want.index)
    np.testing.assert_array_equal(got[["open", "high", "low", "close", "partial"]].to_numpy(),
                                  want[["open", "high", "low", "close", "partial"]].to_numpy())
    assert got[list(BAR_COLUMNS)[4:]].isna().all().all()  # MIDPOINT: no volume, wap or count


def test_nothing_stored_is_an_input_error(sqlite_url):
    engine = open_engine(sqlite_url)
    init_db(engine)
    with pytest.raises(InputError, match="no 1m MIDPOINT bars"):
        rs.resample_stored(engine, 1, EURUSD, BarSize.parse("1m"), BarSize.parse("1h"), "MIDPOINT")


SPY = Instrument.parse("SPY")


@pytest.mark.parametrize(("instrument", "rth"), [(SPY, True), (SPY, False), (EURUSD, True)])
@pytest.mark.parametrize("target", ["5m", "1d", "1w"])
def test_chunk_cuts_fall_where_no_session_or_week_runs(instrument, rth, target):
    days = sessions(instrument, date(2025, 1, 1), date(2025, 12, 31), rth)
    lo, hi = pd.Timestamp(days[0].open), pd.Timestamp(days[-1].close) - pd.Timedelta(seconds=1)
    bounds = rs._chunk_bounds(instrument.is_forex, BarSize.parse(target), lo, hi, workers=2)
    assert len(bounds) % 2 == 0 and 10 <= len(bounds) <= 14  # about a month each, as many per worker
    assert bounds[0][0] == lo.to_pydatetime() and bounds[-1][1] > hi.to_pydatetime()
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    for cut in (pd.Timestamp(b[0]) for b in bounds[1:]):
        assert not any(pd.Timestamp(s.open) < cut < pd.Timestamp(s.close) for s in days), cut
        if target == "1w":
            assert cut.day_of_week == 5  # Saturday: between one week's last session and the next week's first
        elif instrument.is_forex:
            assert cut.tz_convert("America/New_York").strftime("%H:%M") == "17:00"  # a session boundary


def test_chunked_stock_resample_with_extended_hours_equals_one_shot(db_url, monkeypatch):
    monkeypatch.setattr(rs, "DAYS_PER_CHUNK", 1)
    engine = open_engine(db_url)
    init_db(engine)
    days = sessions(SPY, date(2026, 11, 9), date(2026, 11, 20), rth=False)
    index = pd.DatetimeIndex(np.concatenate([pd.date_range(s.open, s.close, freq="1min", inclusive="left")
                                             for s in days]), name="ts").as_unit("us")
    index = index.tz_localize("UTC") if index.tz is None else index
    close = 600 + np.random.default_rng(3).normal(0, 0.05, len(index)).cumsum()
    bars = pd.DataFrame({"open": close, "high": close + 0.01, "low": close - 0.01, "close": close,
                         "volume": 100.0, "wap": close, "bar_count": 1.0}, index=index)
    write_bars(engine, 756733, "1m", "TRADES", bars)
    for target in ("1h", "1d"):
        size = BarSize.parse(target)
        got, rows = rs.resample_stored(engine, 756733, SPY, BarSize.parse("1m"), size, "TRADES", rth=False)
        want = rs.resample_bars(bars, BarSize.parse("1m"), size, sessions(SPY, date(2026, 11, 1), date(2026, 11, 30),
                                                                          rth=False))
        assert rows == len(bars)
        pd.testing.assert_index_equal(got.index, want.index)
        np.testing.assert_array_equal(got[list(BAR_COLUMNS)].to_numpy(), want[list(BAR_COLUMNS)].to_numpy())
