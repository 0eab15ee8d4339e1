"""Position state machines driven by boolean condition arrays, looping over events rather than bars.

Each loop iteration jumps to the next bar where the state can change (a precomputed "next true at or after t"
table), so the Python loop runs once per trade, not once per bar.
"""

from __future__ import annotations

import numpy as np


def _next_true(mask: np.ndarray) -> np.ndarray:
    """``out[t]`` = first index >= t where ``mask`` holds, ``len(mask)`` if none; ``out`` has one extra slot."""
    size = mask.size
    idx = np.where(np.concatenate((mask, [True])), np.arange(size + 1), size)
    return np.minimum.accumulate(idx[::-1])[::-1]


def latch(
    long_entry: np.ndarray,
    long_exit: np.ndarray,
    short_entry: np.ndarray | None = None,
    short_exit: np.ndarray | None = None,
) -> np.ndarray:
    """Target positions in {-1, 0, 1} from per-bar conditions evaluated at each close.

    Flat: go long on a bar where ``long_entry`` holds, else short where ``short_entry`` holds. Long: go flat on the
    first LATER bar where ``long_exit`` holds — or straight to short if ``short_entry`` holds on that bar too (and
    symmetrically for shorts). One change per bar; entry and exit never act on the same bar.
    """
    size = long_entry.size
    never = np.zeros(size, dtype=bool)
    short_entry = never if short_entry is None else short_entry
    short_exit = never if short_exit is None else short_exit
    next_le, next_se = _next_true(long_entry), _next_true(short_entry)
    next_lx, next_sx = _next_true(long_exit), _next_true(short_exit)
    positions = np.zeros(size)
    i, state = 0, 0
    while i < size:
        if state == 0:
            nl, ns = int(next_le[i]), int(next_se[i])
            i = min(nl, ns)
            state = 1 if nl <= ns else -1
            continue
        start = i
        i = int((next_lx if state == 1 else next_sx)[start + 1])
        positions[start:i] = state
        if i >= size:
            break
        opposite = short_entry if state == 1 else long_entry
        state = -state if opposite[i] else 0
        i += int(state == 0)
    return positions
