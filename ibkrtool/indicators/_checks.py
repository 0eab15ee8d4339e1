"""Input checks shared by the indicators (TTR refuses NaNs after the first value; so do we)."""

from __future__ import annotations

import numpy as np


def as_series(x: object, name: str = "x") -> np.ndarray:
    """``x`` as a 1-D float64 array; raises ``ValueError`` if it is not one-dimensional."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def first_valid(x: np.ndarray) -> int:
    """Index of the first non-NaN value (``len(x)`` if none). Raises ``ValueError`` on a NaN after it, as TTR does."""
    nan = np.isnan(x)
    if not nan.any():
        return 0
    valid = np.flatnonzero(~nan)
    if valid.size == 0:
        return len(x)
    first = int(valid[0])
    if nan[first:].any():
        raise ValueError("series contains non-leading NaNs")
    return first


def check_period(n: int, name: str = "n") -> int:
    """A period must be a positive integer; raises ``ValueError`` otherwise."""
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return int(n)
