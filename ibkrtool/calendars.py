"""Exchange sessions for the instruments ibkrtool trades, from a maintained calendar.

US stocks and ETFs follow the NYSE calendar (``exchange_calendars`` "XNYS": holidays and early closes kept up to
date by its maintainers, which beats a hand-written holiday list). Regular hours are the calendar's open/close
(09:30–16:00 New York, 13:00 on early-close days); extended hours are IB's 04:00–20:00 (17:00 on early-close days).

Forex on IDEALPRO trades from Sunday 17:00 to Friday 17:00 New York time. Each daily session runs 17:00→17:00 and
is labelled by the date on which it closes (Monday's session opens Sunday 17:00), the way IB dates forex daily bars.
Forex holidays are not modelled. All returned instants are tz-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import pandas as pd

from ibkrtool.errors import InputError
from ibkrtool.model.instrument import Instrument

NEW_YORK = ZoneInfo("America/New_York")
EXTENDED_OPEN = time(4, 0)
EXTENDED_CLOSE = time(20, 0)
EXTENDED_CLOSE_EARLY = time(17, 0)
FOREX_ROLL = time(17, 0)
# Used to annualise returns: NYSE sessions per year, and forex weekdays per year.
STOCK_SESSIONS_PER_YEAR = 252
FOREX_SESSIONS_PER_YEAR = 260


@dataclass(frozen=True)
class Session:
    """One trading session: its label date and its open/close instants (tz-aware UTC, close exclusive)."""

    date: date
    open: datetime
    close: datetime

    @property
    def seconds(self) -> int:
        return int((self.close - self.open).total_seconds())

    def contains(self, ts: datetime) -> bool:
        return self.open <= ts < self.close


@lru_cache(maxsize=1)
def _nyse() -> xcals.ExchangeCalendar:
    return xcals.get_calendar("XNYS")


def exchange_zone(instrument: Instrument) -> ZoneInfo:
    """The time zone in which the instrument's sessions and IB's bar alignment are defined."""
    return NEW_YORK


def _at(day: date, clock: time) -> datetime:
    return datetime.combine(day, clock, NEW_YORK).astimezone(timezone.utc)


def _check_range(start: date, end: date) -> None:
    if start > end:
        raise InputError(f"start {start} is after end {end}")


def _stock_sessions(start: date, end: date, rth: bool) -> list[Session]:
    cal = _nyse()
    first, last = cal.first_session.date(), cal.last_session.date()
    if start < first or end > last:
        raise InputError(f"dates must lie between {first} and {last} (the range the NYSE calendar covers)")
    schedule = cal.schedule.loc[pd.Timestamp(start) : pd.Timestamp(end)]
    sessions = []
    for label, row in schedule.iterrows():
        day = label.date()
        if rth:
            sessions.append(Session(day, row["open"].to_pydatetime(), row["close"].to_pydatetime()))
            continue
        early = row["close"].tz_convert(NEW_YORK).time() < time(16, 0)
        close = EXTENDED_CLOSE_EARLY if early else EXTENDED_CLOSE
        sessions.append(Session(day, _at(day, EXTENDED_OPEN), _at(day, close)))
    return sessions


def _forex_sessions(start: date, end: date) -> list[Session]:
    days = pd.bdate_range(start, end)
    return [Session(d.date(), _at(d.date() - timedelta(days=1), FOREX_ROLL), _at(d.date(), FOREX_ROLL)) for d in days]


def sessions(instrument: Instrument, start: date, end: date, rth: bool = True) -> list[Session]:
    """Sessions whose label date lies in ``[start, end]`` (both inclusive), in order.

    ``rth`` selects regular hours for stocks (ignored for forex). Raises ``InputError`` for an inverted range or
    dates outside the calendar's coverage.
    """
    _check_range(start, end)
    if instrument.is_forex:
        return _forex_sessions(start, end)
    return _stock_sessions(start, end, rth)


def sessions_between(instrument: Instrument, start: datetime, end: datetime, rth: bool = True) -> list[Session]:
    """Sessions overlapping the instant range ``[start, end)`` (tz-aware), clipped to it."""
    if start.tzinfo is None or end.tzinfo is None:
        raise InputError("start and end must carry a time zone")
    local_start = start.astimezone(NEW_YORK).date() - timedelta(days=1)
    local_end = end.astimezone(NEW_YORK).date() + timedelta(days=1)
    out = []
    for s in sessions(instrument, local_start, local_end, rth):
        lo, hi = max(s.open, start), min(s.close, end)
        if lo < hi:
            out.append(Session(s.date, lo, hi))
    return out


def session_of(instrument: Instrument, ts: datetime, rth: bool = True) -> Session | None:
    """The session containing instant ``ts``, or None when the market is closed then."""
    day = ts.astimezone(NEW_YORK).date()
    for s in sessions(instrument, day - timedelta(days=1), day + timedelta(days=1), rth):
        if s.contains(ts):
            return s
    return None


def last_complete_session(instrument: Instrument, now: datetime, rth: bool = True) -> Session:
    """The latest session that closed at or before ``now`` (e.g. Friday's session when run on a weekend)."""
    day = now.astimezone(NEW_YORK).date()
    recent = sessions(instrument, day - timedelta(days=14), day + timedelta(days=1), rth)
    done = [s for s in recent if s.close <= now]
    if not done:
        raise InputError(f"no complete session before {now.isoformat()}")
    return done[-1]


def session_seconds(instrument: Instrument, rth: bool = True) -> int:
    """Length of a full (not early-close) session in seconds."""
    if instrument.is_forex:
        return 86_400
    return 23_400 if rth else 57_600


def sessions_per_year(instrument: Instrument) -> int:
    """Trading sessions in a typical year, for annualising returns and volatility."""
    return FOREX_SESSIONS_PER_YEAR if instrument.is_forex else STOCK_SESSIONS_PER_YEAR
