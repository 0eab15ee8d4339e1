"""resample_stored: chunked (parallel on PostgreSQL) reads of a stored series give exactly the one-shot result."""

from __future__ import annotations

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
    monkeypatch.setattr(rs, "SESSIONS_PER_CHUNK", 3)  # several chunks, each cut at a session open
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
