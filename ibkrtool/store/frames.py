"""The bars DataFrame convention: index ``ts`` (tz-aware UTC bar start, sorted, unique), float64 columns
``open, high, low, close, volume, wap, bar_count`` (NaN = unknown)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ibkrtool.errors import InputError
from ibkrtool.model import BAR_COLUMNS

REQUIRED = ("open", "high", "low", "close")


def empty_bars() -> pd.DataFrame:
    """A bars frame with no rows."""
    return bars_frame(np.empty(0, np.int64), np.empty((len(BAR_COLUMNS), 0)))


def bars_frame(ts_us: np.ndarray, values: np.ndarray) -> pd.DataFrame:
    """Wrap Unix-epoch microseconds and a ``(7, rows)`` float64 block as a bars frame without copying the block."""
    index = pd.DatetimeIndex(ts_us.astype("datetime64[us]"), name="ts").tz_localize("UTC")
    return pd.DataFrame(values.T, index=index, columns=list(BAR_COLUMNS), copy=False)


def epoch_us(index: pd.DatetimeIndex) -> np.ndarray:
    """Unix epoch microseconds (int64) of a tz-aware index."""
    return index.as_unit("us").asi8.astype(np.int64, copy=False)


def checked_bars(bars: pd.DataFrame) -> pd.DataFrame:
    """``bars`` conformed for writing: UTC index named ``ts``, sorted and unique, float64 columns, missing optional
    columns as NaN and IB's -1 sentinels as NaN. Raises ``InputError`` for naive/duplicate stamps or missing prices.
    """
    index = bars.index
    if not isinstance(index, pd.DatetimeIndex):
        raise InputError("bars must be indexed by bar start timestamps (a DatetimeIndex named 'ts')")
    if index.tz is None:
        raise InputError("bar timestamps are naive; localise them (e.g. tz_localize('UTC')) before writing")
    missing = [c for c in REQUIRED if c not in bars.columns]
    if missing:
        raise InputError(f"bars lack column(s) {', '.join(missing)}")
    out = pd.DataFrame({c: _floats(bars, c) for c in BAR_COLUMNS}, index=index.tz_convert("UTC").rename("ts"))
    if not out.index.is_monotonic_increasing:
        out = out.sort_index()
    if out.index.has_duplicates:
        raise InputError(f"duplicate bar timestamp {out.index[out.index.duplicated()][0].isoformat()}")
    if len(out) and np.isnan(out[list(REQUIRED)].to_numpy()).any():
        raise InputError("bars have missing open/high/low/close prices")
    return out


def _floats(bars: pd.DataFrame, col: str) -> np.ndarray:
    if col not in bars.columns:
        return np.full(len(bars), np.nan)
    column = bars[col]
    if column.dtype == np.float64:  # already numeric (every frame ibkrtool builds): skip the parse
        values = column.to_numpy()
    else:
        values = pd.to_numeric(column).to_numpy(dtype=np.float64, na_value=np.nan)
    if col in ("volume", "wap", "bar_count"):
        values = np.where(values == -1, np.nan, values)  # IB's "unknown" on non-TRADES bars
    return values
