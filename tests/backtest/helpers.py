"""Synthetic bars and position series for the backtest tests (deterministic, seeded)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def random_bars(n: int, seed: int = 7, start: str = "2024-03-04 14:30", freq: str = "5min") -> pd.DataFrame:
    """A random-walk OHLC frame in the house convention (UTC ``ts`` index, float64 columns)."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, n)))
    open_ = np.concatenate([[100.0], close[:-1]]) * np.exp(rng.normal(0.0, 0.0005, n))
    spread = np.abs(rng.normal(0.0, 0.001, n)) * close
    index = pd.date_range(start, periods=n, freq=freq, tz="UTC", name="ts")
    return pd.DataFrame({
        "open": open_, "high": np.maximum(open_, close) + spread, "low": np.minimum(open_, close) - spread,
        "close": close, "volume": rng.integers(100, 10_000, n).astype(float), "wap": np.nan, "bar_count": np.nan,
    }, index=index)


def random_positions(n: int, seed: int = 11, long_only: bool = False, hold: int = 12) -> np.ndarray:
    """Targets that change every few bars (geometric holding times), flat on the first and last three bars."""
    rng = np.random.default_rng(seed)
    out = np.zeros(n)
    i, choices = 1, ([0.0, 1.0] if long_only else [-1.0, 0.0, 1.0])
    while i < n:
        length = int(rng.geometric(1.0 / hold))
        out[i:i + length] = rng.choice(choices)
        i += length
    out[:1] = 0.0
    out[-3:] = 0.0
    return out


def session_bars(start: str, end: str, seed: int = 5, minutes: int = 5) -> pd.DataFrame:
    """Random-walk bars filling every NYSE regular session (exchange calendar) between two dates."""
    from datetime import date

    from ibkrtool.calendars import sessions
    from ibkrtool.model import Instrument

    stamps = []
    for s in sessions(Instrument.parse("SPY"), date.fromisoformat(start), date.fromisoformat(end)):
        stamps.append(pd.date_range(s.open, s.close, freq=f"{minutes}min", inclusive="left"))
    index = stamps[0].append(stamps[1:]).tz_convert("UTC").rename("ts")
    bars = random_bars(len(index), seed=seed)
    bars.index = index
    return bars
