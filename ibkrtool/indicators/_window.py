"""Sliding-window helpers built from one vectorised pass per lag over views of one padded copy: for the short
windows indicators use (n ≲ 200) this is far faster than reducing along a strided ``sliding_window_view`` axis."""

from __future__ import annotations

import numpy as np


def _lags(x: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, int]:
    """A copy of ``x`` padded with -inf so that ``x[t-k]`` for ``lo <= k <= hi`` is a plain slice."""
    before, after = max(hi, 0), max(-lo, 0)
    return np.concatenate((np.full(before, -np.inf), x, np.full(after, -np.inf))), before


def _lag(padded: np.ndarray, before: int, size: int, k: int) -> np.ndarray:
    return padded[before - k : before - k + size]


def window_max(x: np.ndarray, lags: range) -> np.ndarray:
    """``max(x[t-k] for k in lags)`` at each ``t`` (negative ``k`` looks ahead); out-of-range values count as -inf,
    NaN propagates."""
    padded, before = _lags(x, min(lags), max(lags))
    out = np.full(x.shape, -np.inf)
    for k in lags:
        np.maximum(out, _lag(padded, before, x.size, k), out=out)
    return out


def latest_argmax(x: np.ndarray, n: int) -> np.ndarray:
    """Bars since the most recent maximum of ``x[t-n .. t]`` (0..n); out-of-range values count as -inf."""
    padded, before = _lags(x, 0, n)
    top = window_max(x, range(n + 1))
    loc = np.full(x.shape, n, dtype=np.int64)
    for k in range(n - 1, -1, -1):  # descending, so the smallest lag that hits the maximum is written last
        loc[_lag(padded, before, x.size, k) == top] = k
    return loc
