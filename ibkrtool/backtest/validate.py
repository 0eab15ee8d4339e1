"""Input checks before a backtest: bars, positions, gaps. Every refusal is one ``InputError`` line.

Gaps: a bar is *missing* when two consecutive bars fall in the SAME exchange session (``ibkrtool.calendars``) but
are more than one bar length apart. Overnight, weekend and holiday breaks are therefore not gaps, nor are missing
bars before the first or after the last bar of a session. Missing bars are reported as a warning (the engine holds
the position across them, which is what a live strategy would also do); ``gaps="refuse"`` makes them an error.
Daily and longer bars are not gap-checked.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from ibkrtool import calendars
from ibkrtool.errors import InputError
from ibkrtool.model import BarSize, Instrument

REQUIRED = ("open", "high", "low", "close")


def check_bars(bars: pd.DataFrame, what: str = "bars") -> None:
    """Refuse empty frames, missing OHLC columns, a naive/unsorted/duplicated index and NaN prices."""
    if bars is None or len(bars) == 0:
        raise InputError(f"no {what} in the requested range; widen --start/--end or backfill first")
    missing = [c for c in REQUIRED if c not in bars.columns]
    if missing:
        raise InputError(f"{what} lack column(s) {', '.join(missing)}")
    index = bars.index
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        raise InputError(f"{what} need a time-zone-aware timestamp index (UTC)")
    if not index.is_monotonic_increasing or index.has_duplicates:
        raise InputError(f"{what} timestamps must be sorted and unique")
    prices = bars[list(REQUIRED)].to_numpy(np.float64)
    bad = ~np.isfinite(prices).all(axis=1) | (prices <= 0).any(axis=1)
    if bad.any():
        first = index[int(np.argmax(bad))]
        raise InputError(f"{int(bad.sum())} bar(s) have missing or non-positive prices, first at {first.isoformat()}; "
                         "repair or drop them before backtesting")


def check_positions(positions: np.ndarray, n_bars: int) -> np.ndarray:
    """Positions as float64 in {-1, 0, 1}, one per bar; raise ``InputError`` otherwise."""
    values = np.asarray(positions, dtype=np.float64)
    if values.shape != (n_bars,):
        raise InputError(f"positions has {values.size} values for {n_bars} bars; they must match one to one")
    if not np.isin(values, (-1.0, 0.0, 1.0)).all():
        raise InputError("positions must be -1 (short), 0 (flat) or 1 (long) at every bar, without NaN")
    return values


def session_index(bars: pd.DataFrame, instrument: Instrument, rth: bool = True, bar_seconds: int = 0) -> np.ndarray:
    """For each bar, the number of the exchange session containing its start, or -1 outside every session."""
    index = bars.index
    found = calendars.sessions_between(instrument, index[0].to_pydatetime(),
                                       (index[-1] + timedelta(seconds=max(bar_seconds, 1))).to_pydatetime(), rth)
    stamps = index.as_unit("ns").asi8
    if not found:
        return np.full(stamps.size, -1, dtype=np.int64)
    opens = pd.DatetimeIndex([s.open for s in found]).as_unit("ns").asi8
    closes = pd.DatetimeIndex([s.close for s in found]).as_unit("ns").asi8
    session = np.searchsorted(opens, stamps, side="right") - 1
    inside = (session >= 0) & (stamps < closes[np.clip(session, 0, None)])
    return np.where(inside, session, -1)


def find_gaps(bars: pd.DataFrame, instrument: Instrument, bar_size: BarSize, rth: bool = True,
              sessions: np.ndarray | None = None) -> np.ndarray:
    """Indices ``i`` where bars are missing between bar ``i-1`` and bar ``i`` inside one session (see module doc).

    ``sessions`` (from ``session_index``) is computed when not given. Raises ``InputError`` when the bars lie
    outside the exchange calendar's coverage.
    """
    if not bar_size.is_intraday or len(bars) < 2:
        return np.empty(0, dtype=np.int64)
    step = np.int64(bar_size.seconds) * 1_000_000_000
    jumps = np.flatnonzero(np.diff(bars.index.as_unit("ns").asi8) > step) + 1
    if jumps.size == 0:
        return jumps
    if sessions is None:
        sessions = session_index(bars, instrument, rth, bar_size.seconds)
    same = (sessions[jumps] == sessions[jumps - 1]) & (sessions[jumps] >= 0)
    return jumps[same]


def outside_warning(sessions: np.ndarray, instrument: Instrument, rth: bool) -> str | None:
    """A warning when many bars start outside the sessions assumed for annualising (e.g. extended-hours data)."""
    outside = int((sessions < 0).sum())
    if outside == 0 or outside < 0.02 * sessions.size:
        return None
    hint = " — if they are extended-hours bars, run with --all-hours" if rth and not instrument.is_forex else ""
    return f"{outside} of {sessions.size} bars lie outside {'regular' if rth else 'trading'} sessions{hint}"


def gap_warning(bars: pd.DataFrame, gaps: np.ndarray, policy: str) -> str | None:
    """A one-line description of the gaps; raises ``InputError`` when ``policy == "refuse"``."""
    if gaps.size == 0:
        return None
    first = bars.index[int(gaps[0]) - 1].isoformat()
    text = f"{gaps.size} gap(s) inside sessions (missing bars), first after {first}"
    if policy == "refuse":
        raise InputError(f"{text}; backfill them or run with --gaps warn")
    return text + "; positions are held across them"
