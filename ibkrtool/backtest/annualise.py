"""Bars per year, from the bar length and the exchange's trading hours (``ibkrtool.calendars``)."""

from __future__ import annotations

from ibkrtool import calendars
from ibkrtool.model import BarSize, BarUnit, Instrument


def periods_per_year(instrument: Instrument, bar_size: BarSize, rth: bool = True) -> float:
    """How many bars of ``bar_size`` a year of trading holds, for annualising per-bar returns.

    Intraday bars: sessions per year × session length / bar length (US stocks, RTH: 252 × 23,400 s; extended hours
    16 h; forex: 260 × 24 h). Daily bars: sessions per year; weekly 52; monthly 12.
    """
    if bar_size.unit is BarUnit.MONTH:
        return 12.0 / bar_size.count
    if bar_size.unit is BarUnit.WEEK:
        return 52.0 / bar_size.count
    sessions = calendars.sessions_per_year(instrument)
    if bar_size.unit is BarUnit.DAY:
        return sessions / bar_size.count
    per_session = calendars.session_seconds(instrument, rth) / bar_size.seconds
    return sessions * per_session
