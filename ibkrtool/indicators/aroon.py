"""Aroon up/down/oscillator exactly as ``TTR::aroon`` (TTR 0.24.3, src/aroon.c ``aroon_max``) computes them.

TTR's rule, read from its C source: at bar ``t`` look at the ``n+1`` bars ``t-n .. t``; ``loc`` is how many bars
ago the highest high was made, the MOST RECENT one on ties; ``aroon_up = 100 * (n - loc) / n`` (100 = new high
this bar, 0 = the high is ``n`` bars old). ``aroon_down`` is the same on ``-low``; ``oscillator = up - down``.
The first value is at the ``n``-th valid bar (index ``n-1``), where the window is only the ``n`` bars available.
TTR quirk kept for parity: with exactly one leading NaN the first value is 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ibkrtool.indicators._checks import as_series, check_period, first_valid
from ibkrtool.indicators._window import latest_argmax


@dataclass(frozen=True)
class Aroon:
    """The three Aroon series, each float64 in [0, 100] (oscillator in [-100, 100]), NaN during warm-up."""

    up: np.ndarray
    down: np.ndarray
    oscillator: np.ndarray


def aroon(high: object, low: object, n: int = 20) -> Aroon:
    """Aroon(n) of ``high``/``low`` (pass the close twice for TTR's one-column form). Raises ``ValueError``
    on non-leading NaNs or mismatched lengths; fewer than ``n`` valid bars gives all NaN."""
    hi, lo, n = as_series(high, "high"), as_series(low, "low"), check_period(n)
    if hi.shape != lo.shape:
        raise ValueError("high and low must have the same length")
    up = _aroon_max(hi, n)
    down = _aroon_max(-lo, n)
    return Aroon(up, down, up - down)


def _aroon_max(x: np.ndarray, n: int) -> np.ndarray:
    out = np.full(x.shape, np.nan)
    first = first_valid(x)
    start = first + n - 1
    if start >= len(x):
        return out
    # Leading NaNs count as -inf because TTR's comparisons with NaN are false; bars before the series start too,
    # so the first output's (n+1)-window holds just the n bars available.
    loc = latest_argmax(np.where(np.isnan(x), -np.inf, x), n)
    out[start:] = 100.0 * (n - loc[start:]) / n
    if first == 1:
        out[start] = 0.0  # TTR's running max starts at x[0] (NaN here) and so reports loc = n at the first bar
    return out
