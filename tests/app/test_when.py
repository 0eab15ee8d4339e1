"""The one time rule (model.when): dates are trading days in the exchange's zone, datetimes need a zone."""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from ibkrtool.errors import InputError
from ibkrtool.model.when import When, bounds, zone_named

NY = ZoneInfo("America/New_York")


def test_a_date_is_a_whole_day_in_the_exchange_zone_and_end_is_inclusive() -> None:
    day = When.parse("2026-03-02", "--start")
    assert day.day == date(2026, 3, 2) and day.instant is None
    assert day.start_in(NY) == datetime(2026, 3, 2, 5, 0, tzinfo=timezone.utc)
    assert day.end_in(NY) == datetime(2026, 3, 3, 5, 0, tzinfo=timezone.utc)


def test_a_naive_datetime_is_refused_with_the_fix() -> None:
    with pytest.raises(InputError, match=r"--start '2026-03-02T09:30' has no time zone.*--tz America/New_York"):
        When.parse("2026-03-02T09:30", "--start")


def test_a_naive_datetime_reads_in_the_zone_given_by_tz() -> None:
    moment = When.parse("2026-03-02T09:30", "--start", zone_named("America/New_York"))
    assert moment.instant == datetime(2026, 3, 2, 14, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize("text", ["2026-03-02T14:30:00Z", "2026-03-02T09:30:00-05:00", "2026-03-02 14:30+00:00"])
def test_a_zoned_datetime_is_taken_as_is(text: str) -> None:
    assert When.parse(text, "--end").instant == datetime(2026, 3, 2, 14, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "2026-02-30", "02/03/2026"])
def test_garbage_is_refused_naming_the_option(text: str) -> None:
    with pytest.raises(InputError, match="--until"):
        When.parse(text, "--until")


def test_unknown_zone_and_inverted_bounds_are_refused() -> None:
    with pytest.raises(InputError, match="unknown time zone"):
        zone_named("Mars/Olympus")
    with pytest.raises(InputError, match="not before"):
        bounds(When.parse("2026-03-03", "--start"), When.parse("2026-03-02", "--end"), NY)
    lo, hi = bounds(When.parse("2026-03-02", "--start"), When.parse("2026-03-02", "--end"), NY)
    assert hi is not None and lo is not None and (hi - lo).total_seconds() == 86400


def test_a_forex_trading_day_is_the_session_closing_at_17_new_york() -> None:
    from ibkrtool.data.sources import exchange_bounds
    from ibkrtool.model import Instrument

    day = When.parse("2026-11-16", "--start")
    lo, hi = exchange_bounds(Instrument.parse("EUR.USD"), day, When.parse("2026-11-20", "--end"))
    assert lo == datetime(2026, 11, 15, 22, 0, tzinfo=timezone.utc)  # Sunday 17:00 New York
    assert hi == datetime(2026, 11, 20, 22, 0, tzinfo=timezone.utc)  # Friday 17:00 New York
    stock_lo, _ = exchange_bounds(Instrument.parse("SPY"), day, None)
    assert stock_lo == datetime(2026, 11, 16, 5, 0, tzinfo=timezone.utc)
