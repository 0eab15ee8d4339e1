"""IB's rules for historical bar requests: validation with IB's error codes and texts, and the request window.

Sources (see /work/shared/reference/ib_api_facts.md §3-4 for the tags):
- IB TWS API "Historical Bar Data" and "Historical Data Limitations" pages (interactivebrokers.github.io/tws-api/
  historical_bars.html, historical_limitations.html; IBKR Campus TWS API §21): bar sizes, duration units,
  whatToShow per instrument, keepUpToDate needs an empty endDateTime and bars >= 5 s, bars of 30 s or less are
  kept for 6 months, the max duration per bar size table.
- Texts as TWS sends them, seen in user logs: 321 "Error validating request...: cause - Historical data bar size
  setting is invalid. Legal ones are: ..." (rust-ibapi#245, InterReact#16), "... Date formatting selection of 0
  rejected" (vnpy#2937), "End date not supported with live updates"; 162 "No historical market data for
  CHF/CASH@FXSUBPIP Last 300" (TRADES on forex, ib_insync#316), "HMDS query returned no data: AAPL@SMART Trades",
  "Time length exceed max.", "invalid step: 1" (1 secs over a day, wrighter/ib-scripts#1); 10314's text restates
  the accepted endDateTime formats.

Checks run in TWS's order: endDateTime (10314), duration, bar size, whatToShow, formatDate, keepUpToDate (321),
then the data service's refusals (162).

Max duration per bar size — the table applied: IBKR Campus "max duration per bar size" (the current docs):
``1 secs`` only in seconds and at most 2000 S; every size up to 86400 S / 365 D / 52 W / 12 M / 68 Y. The older
"step size" table of the deprecated docs is stricter than what TWS accepts today (e.g. ``1 M`` of 1-day bars is
in common use), so it is not enforced.

Window: the bars whose START lies in ``[start, end)``, ``end`` = endDateTime (or now; never later than now):
- ``S``: wall-clock seconds back from ``end``, also with useRTH=1 (the window is then the regular-hours part of
  it). No IB statement found; a public reimplementation of the gateway's request checks does the same.
- ``D``: the last N sessions that opened before ``end`` (``2 D`` = the last two sessions, as TWS charts count).
- ``W`` / ``M`` / ``Y``: calendar weeks/months/years back from ``end`` (a daily bar is in the window if its
  session opened inside it).
- Alignment (``S``/``W``/``M``/``Y``): ``start`` is floored to the bar grid for intraday bar sizes (the grid of
  ``market.py``: the New York clock, so 5-minute bars at :00, :05 …) and to a whole second for daily and longer
  bars. So IB's bar that starts at, or contains, ``end - duration`` is included: with an empty endDateTime ``end``
  is "now" with sub-second precision, and "60 S" of "1 min" bars at 10:01:00.003 still returns the 10:00 bar,
  "1800 S" of "1 secs" returns 1800 bars, not 1799. Sources: ib_api_facts.md §3 only says bar times are bar
  starts ([C §21]); it states no rule for where the window starts, so including the bar that contains
  ``end - duration`` is this sim's reading of IB (UNVERIFIED against a live TWS). ``D`` windows start at a
  session open and are not floored (flooring e.g. a 17:00 forex open to the 8-hour grid would pull in the previous
  session's last bar).
"""

from __future__ import annotations

import re
from calendar import monthrange
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from ibkrtool.sim import calendar as cal
from ibkrtool.sim.bars import SimBar, bar_length
from ibkrtool.sim.contracts import SimContract
from ibkrtool.sim.generator import default_head_timestamp


class SimRequestError(Exception):
    """IB refused a request: ``code`` and ``text`` are IB's error code and exact text."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code}: {text}")
        self.code = code
        self.text = text


@dataclass(frozen=True)
class HistoryWindow:
    """A validated request: bars whose start is in ``[start, end)`` (UTC), IB's canonical bar-size spelling.

    ``range_start`` is what IB writes as message 17's startDateStr: ``end`` minus the duration in calendar units,
    even when ``D`` counts sessions. A real reply ([U] ib_async#140) for 8 D of forex daily bars reads
    ``20250405 17:56:00 US/Eastern,20250413 17:56:00 US/Eastern,8,20250402,...``: 8 sessions of bars, the first
    before the reported start.
    """

    start: datetime
    end: datetime
    bar_size: str
    what_to_show: str
    use_rth: bool
    range_start: datetime | None = None

    @property
    def reported_start(self) -> datetime:
        """The startDateStr instant of message 17 (UTC)."""
        return self.range_start or self.start


HMDS = "Historical Market Data Service error message:"
# TWS's local-validation prefix; the quoted token is an obfuscated class name that changes between TWS builds
# ("bI", "bK", "bM" and "." instead of ":" are all seen in logs).
VALIDATION = "Error validating request:-'bI' : cause - "
LEGAL_BAR_SIZES = ("1 secs", "5 secs", "10 secs", "15 secs", "30 secs", "1 min", "2 mins", "3 mins", "5 mins",
                   "10 mins", "15 mins", "20 mins", "30 mins", "1 hour", "2 hours", "3 hours", "4 hours", "8 hours",
                   "1 day", "1W", "1M")
_BAR_ALIASES = {"1 week": "1W", "1 w": "1W", "1w": "1W", "1 month": "1M", "1 m": "1M", "1m": "1M"}
BAD_END_DATE = (
    "End Date/Time: The date, time, or time-zone entered is invalid.\n"
    "The correct format is yyyymmdd hh:mm:ss xx/xxxx\nwhere yyyymmdd and xx/xxxx are optional.\n"
    "E.g.: 20031126 15:59:00 US/Eastern\n\nNote that there is a space between the date and time,\n"
    "and between the time and time-zone.\n\nIf no date is specified, current date is assumed.\n"
    "If no time-zone is specified, local time-zone is assumed(deprecated).\n\n"
    "You can also provide yyyymmddd-hh:mm:ss time is in UTC.\n"
    "Note that there is a dash between the date and time in UTC notation."
)
WHAT_TO_SHOW = ("TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK")
LIVE_WHAT_TO_SHOW = ("TRADES", "MIDPOINT", "BID", "ASK")
SMALL_BAR_S = 30
SMALL_BAR_MONTHS = 6
# Names IB's data service uses in its 162 texts.
_HMDS_TYPE = {"TRADES": "Last", "MIDPOINT": "MidPoint", "BID": "Bid", "ASK": "Ask", "BID_ASK": "BidAsk"}
_DURATION = re.compile(r"^(\d+) ([SDWMY])$")
_UNIT_MAX = {"S": 86400, "D": 365, "W": 52, "M": 12, "Y": 68}
_UNIT_MAX_TEXT = {
    "S": "Historical data request for greater than 86400 seconds rejected.",
    "D": "Historical data requests for durations longer than 365 days must be made in years.",
    "W": "Historical data request for durations longer than 52 weeks must be made in years.",
    "M": "Historical data request for durations longer than 12 months must be made in years.",
    "Y": "Historical data requested duration is invalid.",
}
# The zone TWS is logged in with: zone-less endDateTime values are read in it (deprecated by IB since 10.17).
TWS_LOGIN_ZONE = "US/Eastern"
_ZONE_ALIASES = {"EST": "America/New_York", "EDT": "America/New_York", "GMT": "UTC"}


def _refuse(cause: str) -> SimRequestError:
    return SimRequestError(321, VALIDATION + cause)


def canonical_bar_size(bar_size: str) -> str:
    """IB's spelling of a bar size it accepts (``1 week`` → ``1W``); raises SimRequestError 321 otherwise."""
    text = bar_size.strip()
    text = _BAR_ALIASES.get(text.lower(), text)
    if text not in LEGAL_BAR_SIZES:
        raise _refuse("Historical data bar size setting is invalid. Legal ones are: " + ", ".join(LEGAL_BAR_SIZES))
    return text


def parse_duration(duration: str) -> tuple[int, str]:
    """``"2 D"`` → ``(2, "D")``; a bare number is seconds. Raises SimRequestError 321 with IB's texts."""
    text = duration.strip()
    if not text:
        raise _refuse("Historical data request duration not specified.")
    if text.isdigit():
        text += " S"
    m = _DURATION.match(text.upper())
    if not m:
        raise _refuse("When specifying a unit, historical data request duration format is integer{SPACE}unit "
                      "(S|D|W|M|Y).")
    n, unit = int(m[1]), m[2]
    if n < 1:
        raise _refuse("Historical data requested duration is invalid.")
    if n > _UNIT_MAX[unit]:
        raise _refuse(_UNIT_MAX_TEXT[unit])
    return n, unit


def parse_end_datetime(text: str, now: datetime) -> datetime:
    """IB's endDateTime forms → UTC: ``""`` (now), ``yyyymmdd hh:mm:ss <zone>``, ``yyyymmdd-hh:mm:ss`` (UTC),
    zone-less ``yyyymmdd hh:mm:ss`` (the TWS login zone), and without the date (today; 10314's text says the date
    and the zone are optional). Anything else raises SimRequestError 10314."""
    s = text.strip()
    if not s:
        return now
    try:
        if re.fullmatch(r"\d{8}-\d{2}:\d{2}:\d{2}", s):
            return datetime.strptime(s, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
        m = re.fullmatch(r"(?:(\d{8}) +)?(\d{2}:\d{2}:\d{2})(?: +(\S+))?", s)
        if m:
            name = m[3] or TWS_LOGIN_ZONE
            zone = ZoneInfo(_ZONE_ALIASES.get(name, name))
            day = m[1] or f"{now.astimezone(zone):%Y%m%d}"  # no date: today in that zone
            return datetime.strptime(f"{day} {m[2]}", "%Y%m%d %H:%M:%S").replace(tzinfo=zone).astimezone(UTC)
    except (ValueError, KeyError):
        pass
    raise SimRequestError(10314, BAD_END_DATE)


def _months_back(t: datetime, months: int) -> datetime:
    y, m = divmod(t.year * 12 + t.month - 1 - months, 12)
    return t.replace(year=y, month=m + 1, day=min(t.day, monthrange(y, m + 1)[1]))


def _window_start(contract: SimContract, end: datetime, n: int, unit: str, use_rth: bool, bar_size: str) -> datetime:
    is_fx = contract.sec_type == "CASH"
    if unit == "D":
        sessions = cal.sessions_back(is_fx, end, n, use_rth)
        return sessions[0].bounds(use_rth)[0] if sessions else end - timedelta(days=n)
    if unit == "S":
        start = end - timedelta(seconds=n)
    else:
        start = {"W": end - timedelta(weeks=n), "M": _months_back(end, n), "Y": _months_back(end, 12 * n)}[unit]
    return align_window_start(start, bar_size)


def align_window_start(t: datetime, bar_size: str) -> datetime:
    """``t`` (tz-aware) floored to the start of the bar containing it: the New York clock grid for intraday
    sizes (as ``market.py`` bins bars), a whole second for daily and longer bars; returned in UTC."""
    epoch = int(t.timestamp() // 1)  # floor, also for instants before 1970
    length = bar_length(bar_size)
    if isinstance(length, int) and length > 1:
        offset = int(t.astimezone(cal.NEW_YORK).utcoffset().total_seconds())
        epoch = (epoch + offset) // length * length - offset
    return datetime.fromtimestamp(epoch, UTC)


def _check_live(end_datetime: str, bar_size: str, what: str) -> None:
    if end_datetime.strip():
        raise _refuse("End date not supported with live updates")
    if what not in LIVE_WHAT_TO_SHOW:
        raise _refuse("Source price not supported with live updates")
    if bar_size == "1 secs":  # IB: keepUpToDate needs bars of 5 s or more; text UNVERIFIED
        raise _refuse("Bar size 1 secs not supported with live updates")


def _hmds_checks(contract: SimContract, n: int, unit: str, bar_size: str, what: str) -> None:
    length = bar_length(bar_size)
    step = length if isinstance(length, int) else {"D": 86400, "W": 604800, "M": 2592000}[length]
    if contract.sec_type == "CASH" and what == "TRADES":
        raise SimRequestError(162, f"{HMDS}No historical market data for {contract.symbol}/CASH@FXSUBPIP Last {step}")
    if bar_size == "1 secs" and unit != "S":
        raise SimRequestError(162, f"{HMDS}invalid step: 1")
    if bar_size == "1 secs" and n > 2000:
        raise SimRequestError(162, f"{HMDS}Time length exceed max.")


def no_data_error(contract: SimContract, what: str) -> SimRequestError:
    """IB's 162 for a window without data, e.g. ``HMDS query returned no data: SPY@SMART Trades`` (the type is
    IB's API name with only its first letter in capitals: ``Midpoint``, ``Bid_ask``)."""
    return SimRequestError(162, f"{HMDS}HMDS query returned no data: {contract.local_symbol}@{contract.exchange} "
                                f"{what.capitalize()}")


def plan_history(contract: SimContract, end_datetime: str, duration: str, bar_size: str, what_to_show: str,
                 use_rth: int, format_date: int, keep_up_to_date: bool, now: datetime) -> HistoryWindow:
    """Validate a reqHistoricalData like TWS/HMDS and compute its window (UTC; ``now`` = sim time, tz-aware).

    The window holds the bars whose start lies in ``[start, end)``: ``end`` = endDateTime or now (at most now, may
    carry sub-second precision); ``start`` = ``end`` minus the duration (``D``: the open of the N-th last session),
    floored to the bar grid for intraday bars and to a whole second otherwise, so the bar that starts at — or
    contains — ``end - duration`` is included ("60 S" of "1 min" bars is one bar even a few ms after a minute).

    Raises SimRequestError with IB's code and text: 10314 (endDateTime), 321 (duration, bar size, whatToShow,
    formatDate, keepUpToDate), 162 (TRADES on forex, too long for 1-second bars, small bars older than 6 months,
    no data in the window).
    """
    end = min(parse_end_datetime(end_datetime, now), now)
    n, unit = parse_duration(duration)
    size = canonical_bar_size(bar_size)
    what = what_to_show.strip().upper()
    if what not in WHAT_TO_SHOW:
        raise _refuse(f"What to show value of {what_to_show} rejected.")
    if format_date not in (1, 2, 3):
        raise _refuse(f"Date formatting selection of {format_date} rejected.")
    if keep_up_to_date:
        _check_live(end_datetime, size, what)
    _hmds_checks(contract, n, unit, size, what)
    start = _window_start(contract, end, n, unit, bool(use_rth), size)
    length = bar_length(size)
    if isinstance(length, int) and length <= SMALL_BAR_S and start < _months_back(now, SMALL_BAR_MONTHS):
        # IB keeps bars of 30 s or less for 6 months; the exact refusal text is UNVERIFIED (no log found).
        raise SimRequestError(162, f"{HMDS}No historical market data for {contract.symbol}/{contract.sec_type}@"
                                   f"{contract.exchange} {_HMDS_TYPE[what]} {length}")
    if end <= default_head_timestamp(contract) or not _has_session(contract, start, end, bool(use_rth)):
        raise no_data_error(contract, what)
    reported = end - {"S": timedelta(seconds=n), "D": timedelta(days=n)}[unit] if unit in "SD" else start
    return HistoryWindow(start, end, size, what, bool(use_rth), reported)


def _has_session(contract: SimContract, start: datetime, end: datetime, use_rth: bool) -> bool:
    for s in cal.sessions_between(contract.sec_type == "CASH", start, end):
        lo, hi = s.bounds(use_rth)
        if lo < end and hi > start:
            return True
    return False


def _zone(contract: SimContract) -> ZoneInfo:
    return ZoneInfo({"US/Eastern": "America/New_York"}.get(contract.time_zone, contract.time_zone))


def session_label(contract: SimContract, t: datetime) -> date:
    """The session date of a daily/weekly/monthly bar starting at ``t``: forex sessions open 17:00 New York the
    evening before the date they are labelled with."""
    local = t.astimezone(cal.NEW_YORK)
    if contract.sec_type == "CASH" and local.hour >= 17:
        return local.date() + timedelta(days=1)
    return local.date()


def period_label(contract: SimContract, first: date, period: str) -> date:
    """The date IB writes on a daily (``D``), weekly (``W``) or monthly (``M``) bar whose first session is
    ``first``: the session date for a day; the LAST trading day of the week or month otherwise.

    Weekly: NVDA 1-week bars from TWS dated Thu 2026-06-18 (Friday was the Juneteenth holiday) and Fri 2026-06-26
    ([U] stoqey/ibkr#149). Monthly: by analogy, UNVERIFIED. A week or month still in progress is labelled with
    its last scheduled session.
    """
    if period == "D":
        return first
    if period == "W":
        last = first + timedelta(days=4 - first.weekday())
    else:
        last = first.replace(day=monthrange(first.year, first.month)[1])
    is_fx = contract.sec_type == "CASH"
    while last > first and cal.session_for_label(is_fx, last) is None:
        last -= timedelta(days=1)
    return last


def format_bar_time(bar: SimBar, bar_size: str, format_date: int, contract: SimContract) -> str:
    """A bar's date field as TWS 10.x sends it: ``yyyymmdd`` for bars of a day or longer (any formatDate; weekly
    and monthly bars carry their last trading day, see ``period_label``); intraday formatDate=1
    ``yyyymmdd hh:mm:ss US/Eastern`` (instrument zone), 2 epoch seconds, 3 ``mmdd hh:mm:ss US/Eastern``."""
    return bar_time_formatter(bar_size, format_date, contract)(bar)


def bar_time_formatter(bar_size: str, format_date: int, contract: SimContract) -> Callable[[SimBar], str]:
    """``format_bar_time`` for one reply: the bar-size and format decisions made once, not once per bar."""
    length = bar_length(canonical_bar_size(bar_size))
    if not isinstance(length, int):
        return lambda bar: period_label(contract, session_label(contract, bar.start), length).strftime("%Y%m%d")
    if format_date == 2:
        return lambda bar: str(int(bar.start.timestamp()))
    if format_date == 3:
        return lambda bar: format_range_time(bar.start, contract)[4:]
    return lambda bar: format_range_time(bar.start, contract)


def format_range_time(t: datetime, contract: SimContract) -> str:
    """``yyyymmdd hh:mm:ss <zone id>`` in the instrument's zone, for message 17's start/end fields."""
    return f"{t.astimezone(_zone(contract)):%Y%m%d %H:%M:%S} {contract.time_zone}"
