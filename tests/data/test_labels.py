from datetime import datetime, timezone

import pandas as pd

from ibkrtool.data.labels import stamp_dated_bars
from ibkrtool.model import BarSize, Instrument

UTC = timezone.utc


def _dated(*days: str) -> pd.DataFrame:
    index = pd.DatetimeIndex([pd.Timestamp(d, tz="UTC") for d in days], name="ts")
    return pd.DataFrame({"close": range(len(days))}, index=index, dtype="float64")


def test_daily_stock_bars_move_to_the_session_open() -> None:
    out = stamp_dated_bars(_dated("2026-11-20", "2026-11-27"), Instrument.parse("SPY"), BarSize.parse("1d"), rth=True)
    assert list(out.index) == [datetime(2026, 11, 20, 14, 30, tzinfo=UTC), datetime(2026, 11, 27, 14, 30, tzinfo=UTC)]
    extended = stamp_dated_bars(_dated("2026-11-20"), Instrument.parse("SPY"), BarSize.parse("1d"), rth=False)
    assert extended.index[0] == datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # 04:00 New York


def test_daily_forex_bars_open_at_17_new_york_the_day_before() -> None:
    out = stamp_dated_bars(_dated("2026-11-23"), Instrument.parse("EUR.USD"), BarSize.parse("1d"), rth=True)
    assert out.index[0] == datetime(2026, 11, 22, 22, 0, tzinfo=UTC)  # Sunday 17:00 EST opens Monday's session


def test_weekly_bars_open_with_the_first_session_of_the_week() -> None:
    # IB dates a weekly bar by a day inside its week; Thanksgiving week 2026 starts Monday the 23rd
    out = stamp_dated_bars(_dated("2026-11-27"), Instrument.parse("SPY"), BarSize.parse("1w"), rth=True)
    assert out.index[0] == datetime(2026, 11, 23, 14, 30, tzinfo=UTC)


def test_intraday_bars_pass_through() -> None:
    frame = _dated("2026-11-20 14:30")
    assert stamp_dated_bars(frame, Instrument.parse("SPY"), BarSize.parse("5m"), rth=True) is frame
