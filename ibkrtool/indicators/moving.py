"""Simple and exponential moving averages with TTR's definitions (``TTR::SMA``, ``TTR::EMA``)."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ibkrtool.indicators._checks import as_series, check_period, first_valid

# The EMA is solved in blocks: inside a block the recursion is a cumulative sum scaled by powers of the decay, and
# the block length keeps those powers within 1e12 so no precision is lost; only the carry between blocks is a loop.
_MAX_GROWTH = 1e12


def sma(x: object, n: int) -> np.ndarray:
    """Mean of the last ``n`` values at each bar (TTR ``SMA``/``runMean``); NaN for the first ``n-1`` valid bars.

    Leading NaNs are allowed and shift the warm-up; a NaN after the first value raises ``ValueError``.
    """
    values, n = as_series(x), check_period(n)
    out = np.full(values.shape, np.nan)
    first = first_valid(values)
    if len(values) - first < n:
        return out
    # Each window is summed on its own (not a running sum) so long series do not accumulate rounding drift.
    out[first + n - 1 :] = sliding_window_view(values[first:], n).sum(axis=1) / n
    return out


def ema(x: object, n: int, wilder: bool = False, ratio: float | None = None) -> np.ndarray:
    """Exponential moving average as TTR ``EMA`` defines it.

    The first value (at the ``n``-th valid bar) is the simple mean of the first ``n`` values; after that
    ``ema[t] = x[t] * ratio + ema[t-1] * (1 - ratio)`` with ``ratio = 2/(n+1)``, or ``1/n`` when ``wilder``.
    NaN before the seed; leading NaNs shift the start; a NaN after the first value raises ``ValueError``.
    """
    values, n = as_series(x), check_period(n)
    alpha = float(ratio) if ratio is not None else (1.0 / n if wilder else 2.0 / (n + 1))
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"ratio must be in (0, 1], got {alpha!r}")
    out = np.full(values.shape, np.nan)
    first = first_valid(values)
    if len(values) - first < n:
        return out
    # TTR accumulates x[i]/n in order; doing the same keeps the seed bit-identical.
    seed = 0.0
    for v in values[first : first + n]:
        seed += v / n
    start = first + n - 1
    out[start] = seed
    out[start + 1 :] = _recurse(values[start + 1 :], seed, alpha)
    return out


def _recurse(x: np.ndarray, y0: float, alpha: float) -> np.ndarray:
    """Solve ``y[t] = alpha*x[t] + (1-alpha)*y[t-1]`` from ``y[-1] = y0``, vectorised in blocks."""
    if x.size == 0:
        return x.copy()
    decay = 1.0 - alpha
    if decay == 0.0:
        return x.copy()
    block = max(1, min(x.size, int(np.log(_MAX_GROWTH) / -np.log(decay))))
    blocks = -(-x.size // block)
    padded = np.zeros(blocks * block)
    padded[: x.size] = x
    grid = padded.reshape(blocks, block)
    k = np.arange(block)
    growth = decay ** (-k)  # 1/decay^k, at most _MAX_GROWTH
    # Partial solution of every block started from zero: y_k = decay^k * cumsum(alpha * x_j / decay^j).
    partial = np.cumsum(grid * (alpha * growth), axis=1) * decay**k
    carry_gain = decay ** (k + 1)
    carried = np.empty(blocks)
    prev = y0
    last_gain = carry_gain[-1]
    for b in range(blocks):
        carried[b] = prev
        prev = partial[b, -1] + last_gain * prev
    full = partial + carried[:, None] * carry_gain[None, :]
    return full.reshape(-1)[: x.size]
