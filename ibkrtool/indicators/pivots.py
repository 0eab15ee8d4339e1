"""Swing pivots (fractal highs and lows) and when they become known.

A pivot high at bar ``p`` is a high strictly greater than each of the ``n`` highs before it and the ``n`` highs after
it; a pivot low is a low strictly below its ``n`` neighbours on each side. Being defined by the ``n`` bars AFTER it,
a pivot is known only at the close of bar ``p + n`` (its confirmation bar); strategies must use the confirmed series.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ibkrtool.indicators._checks import as_series, check_period
from ibkrtool.indicators._window import window_max


@dataclass(frozen=True)
class SwingPivots:
    """``pivot_high``/``pivot_low``: the price at the pivot bar itself, NaN elsewhere (looks ahead: plotting only).
    ``swing_high``/``swing_low``: the most recent pivot confirmed at or before each bar (no look-ahead), NaN before the
    first confirmation."""

    pivot_high: np.ndarray
    pivot_low: np.ndarray
    swing_high: np.ndarray
    swing_low: np.ndarray


def swing_pivots(high: object, low: object, n: int = 5) -> SwingPivots:
    """Pivots of strength ``n`` (bars on each side). Raises ``ValueError`` on mismatched lengths or a bad ``n``.
    NaN prices never form or block a pivot comparison as true (a window with a NaN yields no pivot)."""
    hi, lo, n = as_series(high, "high"), as_series(low, "low"), check_period(n)
    if hi.shape != lo.shape:
        raise ValueError("high and low must have the same length")
    is_high = _strict_extreme(hi, n)
    is_low = _strict_extreme(-lo, n)
    pivot_high = np.where(is_high, hi, np.nan)
    pivot_low = np.where(is_low, lo, np.nan)
    return SwingPivots(pivot_high, pivot_low, _confirmed(pivot_high, n), _confirmed(pivot_low, n))


def _strict_extreme(x: np.ndarray, n: int) -> np.ndarray:
    """True where ``x[p]`` is strictly above every value in ``x[p-n .. p+n]`` other than itself."""
    out = np.zeros(x.shape, dtype=bool)
    if len(x) < 2 * n + 1:
        return out
    neighbours = np.maximum(window_max(x, range(1, n + 1)), window_max(x, range(-n, 0)))
    with np.errstate(invalid="ignore"):
        out[n : len(x) - n] = (x > neighbours)[n : len(x) - n]
    return out


def _confirmed(pivots: np.ndarray, n: int) -> np.ndarray:
    """Shift each pivot to its confirmation bar ``p + n`` and carry it forward until the next one."""
    shifted = np.full(pivots.shape, np.nan)
    shifted[n:] = pivots[: len(pivots) - n]
    index = np.where(~np.isnan(shifted), np.arange(len(shifted)), -1)
    np.maximum.accumulate(index, out=index)
    return np.where(index >= 0, shifted[np.maximum(index, 0)], np.nan)
