"""resample_bars: OHLCV semantics, partial bins, session cuts, bad input, and agreement with pandas."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from ibkrtool.calendars import sessions
from ibkrtool.data.resample import resample_bars
from ibkrtool.errors import InputError
from ibkrtool.model import BAR_COLUMNS, BarSize, Instrument

ONE_MIN, FIVE_MIN, ONE_HOUR = BarSize.parse("1m"), BarSize.parse("5m"), BarSize.parse("1h")
SPY = Instrument.parse("SPY")
DAY = date(2026, 11, 19)  # 09:30-16:00 New York = 14:30-21:00 UTC


def minute_bars(start: str, periods: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 + rng.normal(0, 0.1, periods).cumsum()
    index = pd.date_range(start, periods=periods, freq="1min", tz="UTC", name="ts").as_unit("us")
    return pd.DataFrame({
        "open": close - 0.01, "high": close + 0.05, "low": close - 0.05, "close": close,
        "volume": rng.integers(1, 100, periods).astype(float), "wap": close, "bar_count": 3.0,
    }, index=index)


def test_ohlcv_semantics_by_hand():
    bars = minute_bars("2026-11-19 14:30", 5)
    bars["high"] = [1, 5, 2, 3, 4]
    bars["low"] = [0.5, 0.4, 0.3, 0.9, 0.8]
    bars["volume"] = [1, 0, 3, np.nan, 4]
    bars["wap"] = [10, 20, np.nan, 40, 50]
    out = resample_bars(bars, ONE_MIN, FIVE_MIN, sessions(SPY, DAY, DAY))
    assert out.index.tolist() == [pd.Timestamp("2026-11-19 14:30", tz="UTC")]
    row = out.iloc[0]
    assert (row.open, row.high, row.low, row.close) == (bars.open.iloc[0], 5, 0.3, bars.close.iloc[-1])
    assert row.volume == 8 and row.bar_count == 15
    assert row.wap == pytest.approx((10 * 1 + 50 * 4) / 5)  # bars without volume or wap are left out
    assert not row.partial


def test_wap_is_nan_without_volume_and_counts_stay_nan_when_unknown():
    bars = minute_bars("2026-11-19 14:30", 5)
    bars[["volume", "wap", "bar_count"]] = np.nan
    out = resample_bars(bars, ONE_MIN, FIVE_MIN, None)
    assert out[["volume", "wap", "bar_count"]].isna().all().all()


def test_hourly_bins_are_cut_at_the_session_open_and_marked_partial():
    bars = minute_bars("2026-11-19 14:30", 390)
    out = resample_bars(bars, ONE_MIN, ONE_HOUR, sessions(SPY, DAY, DAY))
    ny = out.index.tz_convert("America/New_York").strftime("%H:%M").tolist()
    assert ny == ["09:30", "10:00", "11:00", "12:00", "13:00", "14:00", "15:00"]
    assert out["partial"].tolist() == [True] + [False] * 6
    dropped = resample_bars(bars, ONE_MIN, ONE_HOUR, sessions(SPY, DAY, DAY), drop_partial=True)
    assert len(dropped) == 6 and not dropped["partial"].any()


def test_holes_empty_bins_and_bars_outside_sessions():
    bars = minute_bars("2026-11-19 14:00", 120).drop(pd.date_range("2026-11-19 14:47", periods=8, freq="1min",
                                                                    tz="UTC"))
    out = resample_bars(bars, ONE_MIN, FIVE_MIN, sessions(SPY, DAY, DAY))
    assert out.index[0] == pd.Timestamp("2026-11-19 14:30", tz="UTC")  # pre-open bars are outside RTH: dropped
    assert pd.Timestamp("2026-11-19 14:50", tz="UTC") not in out.index  # empty bin: no bar
    partial = out.index[out["partial"]].strftime("%H:%M").tolist()
    assert partial == ["14:45"]  # a bin with a hole (14:47-14:54 missing; 14:50 is empty, 14:55 full)
    assert len(resample_bars(bars, ONE_MIN, FIVE_MIN, sessions(SPY, DAY, DAY), drop_partial=True)) == len(out) - 1


def test_daily_and_weekly_bins_follow_sessions():
    bars = minute_bars("2026-11-16 14:30", 60 * 24 * 7)  # a whole week, every minute
    week = sessions(SPY, date(2026, 11, 16), date(2026, 11, 20), rth=True)
    daily = resample_bars(bars, ONE_MIN, BarSize.parse("1d"), week)
    assert daily.index.tolist() == [s.open for s in week]
    assert not daily["partial"].any()
    inside = bars[(bars.index >= week[0].open) & (bars.index < week[0].close)]
    assert daily.volume.iloc[0] == inside.volume.sum() and daily.high.iloc[0] == inside.high.max()
    weekly = resample_bars(daily.drop(columns="partial"), BarSize.parse("1d"), BarSize.parse("1w"), week)
    assert weekly.index.tolist() == [week[0].open] and weekly.close.iloc[0] == daily.close.iloc[-1]
    assert not weekly.partial.iloc[0]


@pytest.mark.parametrize("target", ["5m", "15m", "1h", "4h"])
def test_without_sessions_matches_pandas_clock_resample(target):
    bars = minute_bars("2026-11-19 00:00", 60 * 24 * 3, seed=4)
    size = BarSize.parse(target)
    ours = resample_bars(bars, ONE_MIN, size, None)
    local = bars.tz_convert("America/New_York")
    theirs = local.resample(f"{size.seconds}s").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum", "bar_count": "sum"}
    ).tz_convert("UTC")
    theirs = theirs[theirs.index >= ours.index[0]]
    np.testing.assert_array_equal(ours.index.as_unit("us").asi8, theirs.index.as_unit("us").asi8)
    cols = ["open", "high", "low", "close", "volume", "bar_count"]
    np.testing.assert_allclose(ours[cols].to_numpy(), theirs[cols].to_numpy(), rtol=1e-12)


@pytest.mark.parametrize(
    ("source", "target", "message"),
    [("5m", "7m", "not a whole multiple"), ("5m", "1m", "not a whole multiple"), ("1d", "1h", "smaller size"),
     ("1m", "2d", "1d and 1w"), ("1m", "1M", "monthly")],
)
def test_bad_targets_are_input_errors(source, target, message):
    with pytest.raises(InputError, match=message):
        resample_bars(minute_bars("2026-11-19 14:30", 10), BarSize.parse(source), BarSize.parse(target),
                      sessions(SPY, DAY, DAY))


def test_bad_bars_are_input_errors():
    bars = minute_bars("2026-11-19 14:30", 10)
    with pytest.raises(InputError, match="unsorted or duplicated"):
        resample_bars(bars.iloc[::-1], ONE_MIN, FIVE_MIN, None)
    with pytest.raises(InputError, match="unsorted or duplicated"):
        resample_bars(pd.concat([bars, bars.iloc[[3]]]).sort_index(), ONE_MIN, FIVE_MIN, None)
    with pytest.raises(InputError, match="lack the column low"):
        resample_bars(bars.drop(columns="low"), ONE_MIN, FIVE_MIN, None)
    with pytest.raises(InputError, match="sessions"):
        resample_bars(bars, ONE_MIN, BarSize.parse("1d"), None)


def test_empty_input_gives_an_empty_frame():
    out = resample_bars(minute_bars("2026-11-19 14:30", 0), ONE_MIN, FIVE_MIN, None)
    assert out.empty and list(out.columns) == [*BAR_COLUMNS, "partial"]
