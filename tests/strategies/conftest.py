"""Synthetic bars for strategy tests: a seeded random walk in the house bars frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def make_bars(n: int, seed: int = 3, step: float = 0.2, start: float = 100.0, freq: str = "5min") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = np.round(start + rng.normal(0, step, n).cumsum(), 2)
    open_ = np.concatenate(([start], close[:-1]))
    high = np.round(np.maximum(open_, close) + rng.uniform(0, step, n), 2)
    low = np.round(np.minimum(open_, close) - rng.uniform(0, step, n), 2)
    index = pd.date_range("2026-03-02 14:30", periods=n, freq=freq, tz="UTC", name="ts")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": 100.0, "wap": close, "bar_count": 10.0},
        index=index,
    )


@pytest.fixture
def bars() -> pd.DataFrame:
    return make_bars(3000)
