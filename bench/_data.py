"""Synthetic 1-second RTH bars for the benchmarks (deterministic)."""

from __future__ import annotations

import numpy as np
import pandas as pd

RTH_SECONDS = 23_400  # 09:30-16:00 New York


def rth_bars(days: int, first_day: str = "2024-01-02", seed: int = 1) -> pd.DataFrame:
    """``days`` weekdays of 1-second bars over regular trading hours, as a bars frame (UTC index)."""
    sessions = pd.bdate_range(first_day, periods=days)
    opens = (sessions + pd.Timedelta(hours=9, minutes=30)).tz_localize("America/New_York").tz_convert("UTC")
    offsets = np.arange(RTH_SECONDS, dtype=np.int64) * 1_000_000
    ts_us = (opens.as_unit("us").asi8[:, None] + offsets[None, :]).ravel()
    n = len(ts_us)
    rng = np.random.default_rng(seed)
    close = 400 + np.cumsum(rng.standard_normal(n)) * 0.01
    index = pd.DatetimeIndex(ts_us.astype("datetime64[us]"), name="ts").tz_localize("UTC")
    return pd.DataFrame({
        "open": close + 0.01, "high": close + 0.03, "low": close - 0.03, "close": close,
        "volume": rng.integers(1, 2000, n).astype(np.float64), "wap": close + 0.002,
        "bar_count": rng.integers(1, 60, n).astype(np.float64)}, index=index)
