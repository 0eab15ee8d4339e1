"""Where a command's bars come from: the store (by symbol) or a bars CSV file / stdin, clipped to ``--start/--end``.

Shared by ``resample``, ``strategy``, ``backtest`` and ``execute``; the I/O edge in front of their pure maths.
Times follow the one rule of ``model.when``: a CSV whose stamps carry no zone is refused unless ``tz`` names it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pandas as pd

from ibkrtool.errors import InputError
from ibkrtool.model import Instrument
from ibkrtool.model.when import When, bounds

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


@dataclass(frozen=True)
class LoadedBars:
    """Bars plus what is known about their contract (conid and min tick when they came from the store)."""

    bars: pd.DataFrame
    conid: int | None = None
    min_tick: float | None = None


def exchange_bounds(instrument: Instrument | None, start: When | None, end: When | None
                    ) -> tuple[datetime | None, datetime | None]:
    """``[start, end)`` in UTC; dates are trading days in the instrument's exchange zone (New York without one):
    a stock's day is its calendar day there, a currency pair's the session that closes at 17:00 New York."""
    from ibkrtool.calendars import FOREX_ROLL, NEW_YORK, exchange_zone

    if instrument is None:
        return bounds(start, end, NEW_YORK)
    return bounds(start, end, exchange_zone(instrument), FOREX_ROLL if instrument.is_forex else None)


def load_from_store(engine: Engine, instrument: Instrument, bar_size: str, what_to_show: str,
                    start: datetime | None, end: datetime | None) -> LoadedBars:
    """Bars of ``instrument`` from the database (``start <= ts < end``). Raises ``InputError`` if none are stored."""
    from ibkrtool.store.bars import read_bars
    from ibkrtool.store.contracts import find_contract

    contract = find_contract(engine, instrument.display)
    if contract is None:
        raise InputError(f"no contract {instrument.display} in the database; backfill it first or use --input FILE")
    bars = read_bars(engine, contract.conid, bar_size, what_to_show, start, end)
    return LoadedBars(bars, int(contract.conid), float(contract.min_tick) if contract.min_tick else None)


def load_from_csv(source: str, tz: ZoneInfo | None, start: datetime | None, end: datetime | None) -> LoadedBars:
    """Bars from a CSV file or ``-`` (stdin) in the bars CSV format, clipped to ``[start, end)``.

    ``tz`` is the zone of stamps written without one (``--tz``); without it such a file is refused (exit 3).
    """
    from ibkrtool.store.csvio import read_bars_csv

    stream = sys.stdin if source == "-" else source
    bars = read_bars_csv(stream, tz.key if tz is not None else None, "<stdin>" if source == "-" else source)
    if start is not None:
        bars = bars[bars.index >= start]
    if end is not None:
        bars = bars[bars.index < end]
    return LoadedBars(bars)
