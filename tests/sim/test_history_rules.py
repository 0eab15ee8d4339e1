"""IB's historical-request rules as the sim applies them: each refusal with its code and text, and the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ibkrtool.sim.contracts import SimContract, find_contracts
from ibkrtool.sim.history import (
    BAD_END_DATE,
    HistoryWindow,
    SimRequestError,
    format_bar_time,
    format_range_time,
    parse_end_datetime,
    plan_history,
)
from ibkrtool.sim.market import SimBar

SPY = find_contracts("SPY", "STK", "USD", "SMART")[0]
EUR = find_contracts("EUR", "CASH", "USD", "IDEALPRO")[0]
NOW = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)  # Friday 13:00 New York
HMDS = "Historical Market Data Service error message:"
VALIDATION = "Error validating request:-'bI' : cause - "
LEGAL = ("1 secs, 5 secs, 10 secs, 15 secs, 30 secs, 1 min, 2 mins, 3 mins, 5 mins, 10 mins, 15 mins, 20 mins, "
         "30 mins, 1 hour, 2 hours, 3 hours, 4 hours, 8 hours, 1 day, 1W, 1M")


def plan(contract: SimContract = SPY, end: str = "", duration: str = "1 D", bar: str = "1 hour",
         what: str = "TRADES", rth: int = 1, fmt: int = 1, live: bool = False, now: datetime = NOW) -> HistoryWindow:
    return plan_history(contract, end, duration, bar, what, rth, fmt, live, now)


def refusal(**kwargs: object) -> tuple[int, str]:
    with pytest.raises(SimRequestError) as info:
        plan(**kwargs)
    return info.value.code, info.value.text


# --- refusals --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bar", ["1 sec", "1 mins", "1 hours", "2 days", "5m", "1 year", ""])
def test_bar_size_spellings_outside_ibs_list_are_321(bar: str) -> None:
    assert refusal(bar=bar) == (321, VALIDATION + "Historical data bar size setting is invalid. Legal ones are: "
                                + LEGAL)


def test_week_and_month_spellings_are_accepted() -> None:
    assert plan(duration="1 Y", bar="1 week").bar_size == "1W"
    assert plan(duration="1 Y", bar="1M").bar_size == "1M"


@pytest.mark.parametrize(("duration", "cause"), [
    ("", "Historical data request duration not specified."),
    ("1D", "When specifying a unit, historical data request duration format is integer{SPACE}unit (S|D|W|M|Y)."),
    ("2 days", "When specifying a unit, historical data request duration format is integer{SPACE}unit (S|D|W|M|Y)."),
    ("-1 D", "When specifying a unit, historical data request duration format is integer{SPACE}unit (S|D|W|M|Y)."),
    ("0 D", "Historical data requested duration is invalid."),
    ("86401 S", "Historical data request for greater than 86400 seconds rejected."),
    ("366 D", "Historical data requests for durations longer than 365 days must be made in years."),
    ("53 W", "Historical data request for durations longer than 52 weeks must be made in years."),
    ("13 M", "Historical data request for durations longer than 12 months must be made in years."),
])
def test_duration_format_and_unit_limits_are_321(duration: str, cause: str) -> None:
    assert refusal(duration=duration, bar="1 day") == (321, VALIDATION + cause)


def test_bare_number_duration_is_seconds() -> None:
    w = plan(duration="1800", bar="1 min")
    assert w.end - w.start == timedelta(seconds=1800)


def test_trades_on_forex_is_162_last() -> None:
    assert refusal(contract=EUR, bar="30 mins") == (162, HMDS + "No historical market data for EUR/CASH@FXSUBPIP "
                                                         "Last 1800")
    assert refusal(contract=EUR, bar="5 mins") == (162, HMDS + "No historical market data for EUR/CASH@FXSUBPIP "
                                                        "Last 300")
    for what in ("MIDPOINT", "BID", "ASK", "BID_ASK"):
        assert plan(contract=EUR, what=what).what_to_show == what


def test_one_second_bars_max_duration_campus_table() -> None:
    assert plan(duration="2000 S", bar="1 secs").start == NOW - timedelta(seconds=2000)
    assert refusal(duration="2001 S", bar="1 secs") == (162, HMDS + "Time length exceed max.")
    assert refusal(duration="1 D", bar="1 secs") == (162, HMDS + "invalid step: 1")
    assert plan(duration="1 D", bar="5 secs").bar_size == "5 secs"


def test_small_bars_older_than_six_months_are_refused() -> None:
    old = "20260501-15:00:00"
    code, text = refusal(end=old, duration="1800 S", bar="30 secs")
    assert code == 162 and text.startswith(HMDS + "No historical market data for SPY/STK@SMART Last 30")
    assert plan(end=old, duration="1 D", bar="1 min").bar_size == "1 min"  # 1-minute bars are kept longer
    assert plan(end="20260601-15:00:00", duration="1800 S", bar="30 secs").bar_size == "30 secs"


def test_keep_up_to_date_rules() -> None:
    assert refusal(end="20261120-15:00:00", live=True) == (321, VALIDATION + "End date not supported with live "
                                                                             "updates")
    assert refusal(what="BID_ASK", live=True) == (321, VALIDATION + "Source price not supported with live updates")
    assert refusal(bar="1 secs", duration="60 S", live=True)[0] == 321
    assert plan(bar="5 secs", duration="60 S", live=True).end == NOW


def test_what_to_show_and_format_date_are_321() -> None:
    assert refusal(what="LAST") == (321, VALIDATION + "What to show value of LAST rejected.")
    assert refusal(fmt=0) == (321, VALIDATION + "Date formatting selection of 0 rejected.")


@pytest.mark.parametrize("end", ["2026-11-19", "20261119", "20261119 16:00", "20261119 16:00:00 Mars/Olympus",
                                 "20261119T16:00:00", "yesterday", "20261319 16:00:00"])
def test_bad_end_datetime_is_10314(end: str) -> None:
    assert refusal(end=end) == (10314, BAD_END_DATE)


def test_end_datetime_is_checked_before_everything_else() -> None:
    assert refusal(end="bad", bar="1 sec", duration="x")[0] == 10314


def test_window_without_data_is_162_no_data() -> None:
    saturday = "20261121-17:00:00"
    later = datetime(2026, 11, 25, tzinfo=UTC)
    assert refusal(end=saturday, duration="3600 S", now=later) == (
        162, HMDS + "HMDS query returned no data: SPY@SMART Trades")
    assert refusal(contract=EUR, end=saturday, duration="3600 S", what="MIDPOINT", now=later) == (
        162, HMDS + "HMDS query returned no data: EUR.USD@IDEALPRO Midpoint")
    assert refusal(end="20261120-13:00:00", duration="3600 S") == (  # 08:00 New York: pre-market only
        162, HMDS + "HMDS query returned no data: SPY@SMART Trades")
    assert plan(end="20261120-13:00:00", duration="3600 S", rth=0).use_rth is False
    assert refusal(end="19921231-21:00:00", duration="1 Y", bar="1 day")[0] == 162  # before SPY's listing (1993)


# --- endDateTime forms and windows -------------------------------------------------------------------------------
@pytest.mark.parametrize("end", ["20261119 16:00:00 US/Eastern", "20261119 16:00:00 America/New_York",
                                 "20261119-21:00:00", "20261119 21:00:00 UTC", "20261119 16:00:00",
                                 "20261119  16:00:00"])
def test_end_datetime_forms(end: str) -> None:
    assert parse_end_datetime(end, NOW) == datetime(2026, 11, 19, 21, 0, tzinfo=UTC)


def test_end_datetime_without_date_is_today() -> None:
    assert parse_end_datetime("12:00:00 US/Eastern", NOW) == datetime(2026, 11, 20, 17, 0, tzinfo=UTC)


def test_end_in_the_future_is_now() -> None:
    assert plan(end="20261231-00:00:00").end == NOW


def test_window_in_sessions_for_days() -> None:
    w = plan(duration="2 D", bar="1 hour")
    assert (w.start, w.end) == (datetime(2026, 11, 19, 14, 30, tzinfo=UTC), NOW)  # Thursday's open .. now
    assert w.reported_start == NOW - timedelta(days=2)  # what message 17 says, as IB (calendar days)
    w = plan(duration="2 D", bar="1 hour", rth=0)
    assert w.start == datetime(2026, 11, 19, 9, 0, tzinfo=UTC)  # Thursday 04:00 New York
    monday_early = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)  # 08:00 New York: Monday's RTH not open yet
    w = plan(duration="1 D", bar="5 mins", now=monday_early, rth=1)
    assert w.start == datetime(2026, 11, 20, 14, 30, tzinfo=UTC)  # the last session with RTH open is Friday's
    w = plan(duration="5 D", bar="1 day", end="20261127-23:00:00", now=datetime(2026, 11, 30, tzinfo=UTC))
    assert w.start == datetime(2026, 11, 20, 14, 30, tzinfo=UTC)  # Fri, Mon, Tue, Wed, (Thanksgiving), Fri


def test_window_in_seconds_weeks_months_years() -> None:
    assert plan(duration="3600 S", bar="5 mins").start == NOW - timedelta(hours=1)
    assert plan(duration="1 W", bar="1 day").start == NOW - timedelta(weeks=1)
    assert plan(duration="1 M", bar="1 day").start == datetime(2026, 10, 20, 18, 0, tzinfo=UTC)
    assert plan(duration="1 Y", bar="1 day").start == datetime(2025, 11, 20, 18, 0, tzinfo=UTC)
    assert plan(contract=EUR, duration="3 M", bar="1 day", what="MIDPOINT", now=datetime(2026, 5, 31, 12, tzinfo=UTC)
                ).start == datetime(2026, 2, 28, 12, tzinfo=UTC)  # month arithmetic clamps the day


# --- formats -----------------------------------------------------------------------------------------------------
def test_bar_time_formats() -> None:
    bar = SimBar(datetime(2026, 11, 20, 14, 30, tzinfo=UTC), 1, 1, 1, 1, -1, -1, -1)
    assert format_bar_time(bar, "5 mins", 1, SPY) == "20261120 09:30:00 US/Eastern"
    assert format_bar_time(bar, "5 mins", 2, SPY) == str(int(bar.start.timestamp())) == "1795185000"
    assert format_bar_time(bar, "5 mins", 3, SPY) == "1120 09:30:00 US/Eastern"
    assert format_bar_time(bar, "1 day", 1, SPY) == "20261120"
    assert format_bar_time(bar, "1 day", 2, SPY) == "20261120"
    assert format_bar_time(bar, "1W", 1, SPY) == "20261120"  # weekly bars carry the week's last trading day
    monday = SimBar(datetime(2026, 11, 23, 14, 30, tzinfo=UTC), 1, 1, 1, 1, -1, -1, -1)
    assert format_bar_time(monday, "1 week", 1, SPY) == "20261127"  # Thanksgiving week: Friday still trades
    juneteenth_week = SimBar(datetime(2026, 6, 15, 13, 30, tzinfo=UTC), 1, 1, 1, 1, -1, -1, -1)
    assert format_bar_time(juneteenth_week, "1W", 1, SPY) == "20260618"  # as TWS dated NVDA (stoqey/ibkr#149)
    assert format_bar_time(monday, "1M", 1, SPY) == "20261130"
    fx_session = SimBar(datetime(2026, 11, 22, 22, 0, tzinfo=UTC), 1, 1, 1, 1, -1, -1, -1)  # Sunday 17:00 New York
    assert format_bar_time(fx_session, "1 day", 1, EUR) == "20261123"
    assert format_bar_time(fx_session, "1 hour", 1, EUR) == "20261122 17:00:00 US/Eastern"
    assert format_range_time(NOW, SPY) == "20261120 13:00:00 US/Eastern"


# --- window alignment (empty endDateTime: "now" has sub-second precision) ----------------------------------------
JUST_AFTER = NOW + timedelta(milliseconds=3)  # Friday 13:00:00.003 New York


def test_sub_second_now_keeps_the_bar_starting_at_the_window_start() -> None:
    from ibkrtool.sim.market import Market

    market = Market(1)
    w = plan(duration="60 S", bar="1 min", now=JUST_AFTER)
    assert w.start == NOW - timedelta(minutes=1)
    bars = market.bars(SPY, w.bar_size, w.start, w.end, w.what_to_show, w.use_rth)
    assert [b.start for b in bars] == [NOW - timedelta(minutes=1)]
    w = plan(duration="1800 S", bar="1 secs", now=JUST_AFTER, what="MIDPOINT")
    bars = market.bars(SPY, w.bar_size, w.start, w.end, w.what_to_show, w.use_rth)
    assert len(bars) == 1800 and bars[0].start == NOW - timedelta(seconds=1800)


def test_window_start_is_floored_to_the_bar_grid() -> None:
    mid_minute = NOW + timedelta(seconds=30, milliseconds=4)
    assert plan(duration="60 S", bar="1 min", now=mid_minute).start == NOW - timedelta(minutes=1)
    assert plan(duration="100 S", bar="1 secs", now=mid_minute).start == NOW - timedelta(seconds=70)
    # 4-hour bars sit on the New York clock (00:00, 04:00 … New York): 11:00 New York floors to 08:00 New York
    assert plan(duration="7200 S", bar="4 hours", now=JUST_AFTER).start == datetime(2026, 11, 20, 13, tzinfo=UTC)
    assert plan(duration="1 W", bar="1 day", now=JUST_AFTER).start == NOW - timedelta(weeks=1)  # whole seconds
    assert plan(duration="1 D", bar="1 hour", now=JUST_AFTER).start == datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
