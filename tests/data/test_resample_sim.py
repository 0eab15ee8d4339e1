"""resample(the sim's 1-second bars) == the sim's own bars of the target size: IB's alignment, checked end to end."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest

from ibkrtool.calendars import sessions
from ibkrtool.data.resample import resample_bars
from ibkrtool.model import BAR_COLUMNS, BarSize, Instrument

market = pytest.importorskip("ibkrtool.sim.market")
contracts = pytest.importorskip("ibkrtool.sim.contracts")

# A normal Thursday and the day after Thanksgiving (13:00 early close; 17:00 after-hours close).
DAYS = (date(2026, 11, 19), date(2026, 11, 27))
TARGETS = ("5s", "1m", "5m", "15m", "1h", "1d")


def frame(sim_bars: list) -> pd.DataFrame:
    index = pd.DatetimeIndex([b.start for b in sim_bars], name="ts").as_unit("us")
    data = np.array([[b.open, b.high, b.low, b.close, b.volume, b.wap, b.count] for b in sim_bars], dtype=np.float64)
    data = data.reshape(-1, len(BAR_COLUMNS))
    data[:, 4:][data[:, 4:] == -1] = np.nan
    return pd.DataFrame(data, index=index, columns=list(BAR_COLUMNS))


@pytest.fixture(scope="module")
def sim_market():
    return market.Market(7)


def one_second(sim_market, contract, day: date, what: str, rth: bool) -> pd.DataFrame:
    start = datetime.combine(day, datetime.min.time(), UTC)
    return frame(sim_market.bars(contract, "1 secs", start, start + pd.Timedelta(days=1), what, rth))


@pytest.mark.parametrize("rth", [True, False], ids=["rth", "all-hours"])
@pytest.mark.parametrize("day", DAYS, ids=str)
def test_resampled_spy_trades_equal_the_sims_bars(sim_market, rth, day):
    contract = contracts.find_contracts("SPY", "STK", "USD", "SMART")[0]
    spy = Instrument.parse("SPY")
    ones = one_second(sim_market, contract, day, "TRADES", rth)
    assert len(ones) > 10_000
    start = datetime.combine(day, datetime.min.time(), UTC)
    for target in TARGETS:
        size = BarSize.parse(target)
        want = frame(sim_market.bars(contract, size.ib, start, start + pd.Timedelta(days=1), "TRADES", rth))
        around = sessions(spy, day - pd.Timedelta(days=1), day + pd.Timedelta(days=1), rth)
        got = resample_bars(ones, BarSize.parse("1s"), size, around, drop_partial=False)
        got = got[got.index >= start]  # the sim serves bars STARTING in the range; the day before's tail starts earlier
        pd.testing.assert_index_equal(got.index, want.index, obj=target)
        np.testing.assert_allclose(got[list(BAR_COLUMNS)].to_numpy(), want.to_numpy(), rtol=1e-12, err_msg=target)


def test_resampled_forex_midpoint_follows_the_17h_new_york_session(sim_market):
    contract = contracts.find_contracts("EUR", "CASH", "USD", "IDEALPRO")[0]
    eurusd = Instrument.parse("EUR.USD")
    day = date(2026, 11, 19)  # session 2026-11-18 17:00 → 2026-11-19 17:00 New York
    (session,) = sessions(eurusd, day, day)
    ones = frame(sim_market.bars(contract, "1 secs", session.open, session.close, "MIDPOINT", False))
    for target in ("1h", "1d"):
        size = BarSize.parse(target)
        want = frame(sim_market.bars(contract, size.ib, session.open, session.close, "MIDPOINT", False))
        got = resample_bars(ones, BarSize.parse("1s"), size, [session])
        pd.testing.assert_index_equal(got.index, want.index, obj=target)
        np.testing.assert_allclose(got[["open", "high", "low", "close"]].to_numpy(),
                                   want[["open", "high", "low", "close"]].to_numpy(), rtol=1e-12)
        assert got[["volume", "wap", "bar_count"]].isna().all().all()
    assert got.index[0] == pd.Timestamp("2026-11-18 22:00", tz="UTC")
    assert not got["partial"].iloc[0]
