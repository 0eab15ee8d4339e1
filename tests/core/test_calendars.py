from datetime import date, datetime, timezone

import pytest

from ibkrtool import calendars
from ibkrtool.errors import InputError
from ibkrtool.model import Instrument

SPY = Instrument.parse("SPY")
EURUSD = Instrument.parse("EUR.USD")
UTC = timezone.utc


def test_regular_sessions_skip_weekend_and_thanksgiving_and_shorten_black_friday() -> None:
    days = calendars.sessions(SPY, date(2026, 11, 20), date(2026, 11, 30))
    assert [s.date for s in days] == [date(2026, 11, d) for d in (20, 23, 24, 25, 27, 30)]
    friday = days[0]
    assert friday.open == datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
    assert friday.close == datetime(2026, 11, 20, 21, 0, tzinfo=UTC)
    black_friday = days[4]
    assert black_friday.close == datetime(2026, 11, 27, 18, 0, tzinfo=UTC)  # 13:00 New York early close


def test_extended_hours_are_4_to_20_and_17_on_early_close() -> None:
    days = calendars.sessions(SPY, date(2026, 11, 25), date(2026, 11, 27), rth=False)
    assert days[0].open == datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    assert days[0].close == datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
    assert days[1].close == datetime(2026, 11, 27, 22, 0, tzinfo=UTC)


def test_forex_sessions_run_17_to_17_new_york_labelled_by_closing_date() -> None:
    days = calendars.sessions(EURUSD, date(2026, 11, 21), date(2026, 11, 24))
    assert [s.date for s in days] == [date(2026, 11, 23), date(2026, 11, 24)]  # no weekend sessions
    monday = days[0]
    assert monday.open == datetime(2026, 11, 22, 22, 0, tzinfo=UTC)  # Sunday 17:00 EST
    assert monday.seconds == 86_400


def test_last_complete_session_on_a_weekend_is_fridays() -> None:
    sunday = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert calendars.last_complete_session(SPY, sunday).date == date(2026, 11, 20)
    during_monday = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    assert calendars.last_complete_session(SPY, during_monday).date == date(2026, 11, 20)


def test_session_of_and_sessions_between_clip() -> None:
    assert calendars.session_of(SPY, datetime(2026, 11, 21, 15, 0, tzinfo=UTC)) is None
    assert calendars.session_of(SPY, datetime(2026, 11, 20, 15, 0, tzinfo=UTC)).date == date(2026, 11, 20)
    clipped = calendars.sessions_between(
        SPY, datetime(2026, 11, 20, 20, 0, tzinfo=UTC), datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    )
    assert [(s.open.hour, s.close.hour) for s in clipped] == [(20, 21), (14, 15)]


def test_inverted_range_is_an_input_error() -> None:
    with pytest.raises(InputError, match="after end"):
        calendars.sessions(SPY, date(2026, 11, 20), date(2026, 11, 1))
