"""Where a command's bars come from: the store (by symbol) or a bars CSV file / stdin, clipped to ``--start/--end``.

Shared by ``resample``, ``strategy``, ``backtest`` and ``execute``; the I/O edge in front of their pure maths.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import pandas as pd

from ibkrtool import calendars
from ibkrtool.errors import InputError
from ibkrtool.model import Instrument


@dataclass(frozen=True)
class LoadedBars:
    """Bars plus what is known about their contract (conid and min tick when they came from the store)."""

    bars: pd.DataFrame
    conid: int | None = None
    min_tick: float | None = None


def parse_bound(text: str | None, instrument: Instrument, is_end: bool) -> datetime | None:
    """``--start``/``--end`` as a tz-aware UTC instant.

    A date (``2024-03-01``) means that day in the exchange's time zone (``--end`` includes the whole day); a
    datetime without a zone is read in the exchange's zone; one with a zone (``…Z``, ``…+00:00``) is taken as is.
    Raises ``InputError`` when unparsable.
    """
    if not text:
        return None
    zone = calendars.exchange_zone(instrument)
    try:
        if len(text.strip()) == 10:
            day = date.fromisoformat(text.strip())
            moment = datetime.combine(day + timedelta(days=1) if is_end else day, time(0), zone)
        else:
            moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=zone)
    except ValueError:
        raise InputError(f"date {text!r} is not understood; use YYYY-MM-DD or an ISO datetime") from None
    return pd.Timestamp(moment).tz_convert("UTC").to_pydatetime()


def load_from_store(engine: Any, instrument: Instrument, bar_size: str, what_to_show: str,
                    start: datetime | None, end: datetime | None) -> LoadedBars:
    """Bars of ``instrument`` from the database (``start <= ts < end``). Raises ``InputError`` if none are stored."""
    from ibkrtool.store.bars import read_bars
    from ibkrtool.store.contracts import find_contract

    contract = find_contract(engine, instrument.display)
    if contract is None:
        raise InputError(f"no contract {instrument.display} in the database; backfill it first or use --input FILE")
    bars = read_bars(engine, contract.conid, bar_size, what_to_show, start, end)
    return LoadedBars(bars, int(contract.conid), float(contract.min_tick) if contract.min_tick else None)


def load_from_csv(source: str, instrument: Instrument, start: datetime | None, end: datetime | None) -> LoadedBars:
    """Bars from a CSV file or ``-`` (stdin) in the bars CSV format, clipped to ``[start, end)``."""
    from ibkrtool.store.csvio import read_bars_csv

    zone = calendars.exchange_zone(instrument)
    stream = sys.stdin if source == "-" else source
    bars = read_bars_csv(stream, zone.key, "<stdin>" if source == "-" else source)
    if start is not None:
        bars = bars[bars.index >= start]
    if end is not None:
        bars = bars[bars.index < end]
    return LoadedBars(bars)
