"""One stamp per bar: its start instant in UTC, also for bars IB dates rather than times.

IB sends daily, weekly and monthly bars as dates (``20261120``). Stored bars are keyed by their start instant
(``bars.ts``), and ``resample`` stamps a daily bin with its session's open, so dated bars are restamped the same
way here: a daily bar at the open of the session with that date, a weekly or monthly bar at the open of the first
session of its week (Monday–Friday) or month. Otherwise a backfilled and a resampled ``1d`` series of the same
instrument would hold two rows for one session.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

import pandas as pd

from ibkrtool import calendars
from ibkrtool.model import BarSize, BarUnit, Instrument

log = logging.getLogger(__name__)


def _period_key(day: date, unit: BarUnit) -> tuple[int, int]:
    if unit is BarUnit.WEEK:
        return day.isocalendar()[:2]
    if unit is BarUnit.MONTH:
        return day.year, day.month
    return day.toordinal(), 0


def stamp_dated_bars(bars: pd.DataFrame, instrument: Instrument, bar_size: BarSize, rth: bool) -> pd.DataFrame:
    """Restamp dated bars (index at 00:00 UTC of IB's date) with their session open; intraday bars pass through.

    A date with no session in the calendar keeps its 00:00 UTC stamp and is logged.
    """
    if bar_size.is_intraday or bars.empty:
        return bars
    dates = [ts.date() for ts in bars.index]
    first = min(dates) - timedelta(days=31 if bar_size.unit is BarUnit.MONTH else 7)
    opens: dict[tuple[int, int], pd.Timestamp] = {}
    for session in calendars.sessions(instrument, first, max(dates), rth):
        opens.setdefault(_period_key(session.date, bar_size.unit), pd.Timestamp(session.open))
    stamps = []
    for ts, day in zip(bars.index, dates, strict=True):
        stamp = opens.get(_period_key(day, bar_size.unit))
        if stamp is None:
            log.warning("no %s session on %s: keeping the bar stamped %s", instrument.display, day, ts)
            stamp = ts
        stamps.append(stamp)
    out = bars.copy()
    out.index = pd.DatetimeIndex(stamps, name=bars.index.name).tz_convert("UTC")
    return out[~out.index.duplicated(keep="last")].sort_index()
