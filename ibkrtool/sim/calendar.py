"""Trading sessions the sim serves, per instrument class. All instants are tz-aware UTC.

- The calendar covers 1990-01-02 to the end of the year after next (a wider XNYS range costs seconds to load).
- US stocks: the NYSE calendar from ``exchange_calendars`` (XNYS): regular hours 09:30–16:00 America/New_York
  (13:00 on early-close days), holidays closed. Extended hours (served when useRTH=0) run 04:00–20:00 on every
  trading day; on early-close days the after-hours session ends 4 h after the early close (17:00), as the US
  exchanges do.
- Forex (IDEALPRO): one session per weekday, 17:00 New York the evening before → 17:00 New York, labelled by
  its closing date; the week runs Sunday 17:00 → Friday 17:00. Forex holidays (25 Dec, 1 Jan) and IDEALPRO's
  daily 17:00-17:15 break are not modelled. Regular hours = all hours for forex
  (IB's liquidHours and tradingHours coincide for IDEALPRO apart from the daily 15-minute break we do not model).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import exchange_calendars as xc
import pandas as pd

if TYPE_CHECKING:
    from ibkrtool.sim.contracts import SimContract

NEW_YORK = ZoneInfo("America/New_York")
_EXT_OPEN = time(4, 0)
_EXT_CLOSE = time(20, 0)
_FX_ROLL = time(17, 0)


@dataclass(frozen=True)
class Session:
    """One trading session. ``label`` is the session date IB puts on daily bars."""

    label: date
    open: datetime  # all hours (extended for stocks), UTC
    close: datetime
    rth_open: datetime  # regular hours, UTC
    rth_close: datetime

    def bounds(self, use_rth: bool) -> tuple[datetime, datetime]:
        return (self.rth_open, self.rth_close) if use_rth else (self.open, self.close)


@functools.lru_cache(maxsize=1)
def _xnys() -> xc.ExchangeCalendar:
    # Wide range so head timestamps from the 1990s and a year ahead both have sessions.
    return xc.get_calendar("XNYS", start="1990-01-01", end=f"{datetime.now(UTC).year + 2}-12-31")


def _ny(d: date, t: time) -> datetime:
    return datetime.combine(d, t, NEW_YORK).astimezone(UTC)


@functools.lru_cache(maxsize=4096)
def _stock_session(d: date) -> Session | None:
    cal = _xnys()
    ts = pd.Timestamp(d)
    if ts < cal.first_session or ts > cal.last_session or not cal.is_session(ts):
        return None
    rth_open = cal.session_open(ts).to_pydatetime()
    rth_close = cal.session_close(ts).to_pydatetime()
    ext_close = min(_ny(d, _EXT_CLOSE), rth_close + timedelta(hours=4))
    return Session(d, _ny(d, _EXT_OPEN), ext_close, rth_open, rth_close)


@functools.lru_cache(maxsize=4096)
def _forex_session(d: date) -> Session | None:
    if d.weekday() >= 5:
        return None
    start = _ny(d - timedelta(days=1), _FX_ROLL)
    end = _ny(d, _FX_ROLL)
    return Session(d, start, end, start, end)


def session_for_label(is_forex: bool, d: date) -> Session | None:
    """The session labelled ``d`` or None if the market is closed that day."""
    return _forex_session(d) if is_forex else _stock_session(d)


def sessions_between(is_forex: bool, start: datetime, end: datetime) -> list[Session]:
    """Sessions (all hours) overlapping ``[start, end)``, oldest first. ``start``/``end`` tz-aware."""
    out = []
    d = start.astimezone(NEW_YORK).date() - timedelta(days=1)
    last = end.astimezone(NEW_YORK).date() + timedelta(days=1)
    while d <= last:
        s = session_for_label(is_forex, d)
        if s is not None and s.open < end and s.close > start:
            out.append(s)
        d += timedelta(days=1)
    return out


def sessions_back(is_forex: bool, end: datetime, count: int, use_rth: bool = False) -> list[Session]:
    """The last ``count`` sessions whose (regular, if ``use_rth``) hours opened before ``end``, oldest first.

    IB counts ``D`` durations this way: ``2 D`` = the last two sessions, the one in progress included.
    """
    out: list[Session] = []
    d = end.astimezone(NEW_YORK).date() + timedelta(days=1)
    closed_run = 0
    while len(out) < count and closed_run < 30:
        s = session_for_label(is_forex, d)
        closed_run = closed_run + 1 if s is None else 0
        if s is not None and s.bounds(use_rth)[0] < end:
            out.append(s)
        d -= timedelta(days=1)
    return out[::-1]


def session_at(is_forex: bool, t: datetime) -> Session | None:
    """The session whose all-hours span contains ``t``, else None."""
    found = sessions_between(is_forex, t, t + timedelta(microseconds=1))
    return found[0] if found else None


def last_session_before(is_forex: bool, t: datetime) -> Session | None:
    """The latest session that opened at or before ``t`` (may still be running)."""
    found = sessions_back(is_forex, t + timedelta(microseconds=1), 1)
    return found[0] if found else None


def next_session_after(is_forex: bool, s: Session) -> Session | None:
    """The session following ``s`` (skipping weekends and holidays)."""
    d = s.label
    for _ in range(30):
        d += timedelta(days=1)
        nxt = session_for_label(is_forex, d)
        if nxt is not None:
            return nxt
    return None


def is_open(is_forex: bool, t: datetime, use_rth: bool) -> bool:
    """True if ``t`` (tz-aware) falls in a session (regular part only if ``use_rth``)."""
    s = session_at(is_forex, t)
    if s is None:
        return False
    lo, hi = s.bounds(use_rth)
    return lo <= t < hi


def _fmt_span(a: datetime, b: datetime) -> str:
    a, b = a.astimezone(NEW_YORK), b.astimezone(NEW_YORK)
    return f"{a:%Y%m%d}:{a:%H%M}-{b:%Y%m%d}:{b:%H%M}"


def trading_hours_strings(contract: SimContract, now: datetime, days: int = 7) -> tuple[str, str]:
    """``(tradingHours, liquidHours)`` as TWS writes them, e.g. ``20261120:0930-20261120:1600;20261121:CLOSED``.

    Covers ``days`` calendar days starting with the New York date of ``now``; closed days read ``yyyymmdd:CLOSED``.
    """
    is_fx = contract.sec_type == "CASH"
    trading, liquid = [], []
    first = now.astimezone(NEW_YORK).date()
    for i in range(days):
        d = first + timedelta(days=i)
        s = session_for_label(is_fx, d)
        if s is None and is_fx and d.weekday() == 6:
            continue  # Sunday: the week's first session (labelled Monday) opens this evening
        if s is None:
            trading.append(f"{d:%Y%m%d}:CLOSED")
            liquid.append(f"{d:%Y%m%d}:CLOSED")
            continue
        trading.append(_fmt_span(s.open, s.close))
        liquid.append(_fmt_span(s.rth_open, s.rth_close))
    return ";".join(trading), ";".join(liquid)
