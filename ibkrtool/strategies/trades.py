"""Round trips read off a position series: what ``--trades`` writes (the seed's ``dt_positions.csv``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

TRADE_COLUMNS = ("side", "entry_time", "entry_price", "exit_time", "exit_price", "bars_held", "reason")


def round_trips(bars: pd.DataFrame, positions: np.ndarray, signals: np.ndarray) -> pd.DataFrame:
    """One row per position held: ``side`` long|short, entry/exit time (UTC bar start) and price (that bar's close,
    where the decision was taken), ``bars_held`` (exit bar index - entry bar index) and ``reason`` (the exit signal).
    A position still open at the last bar has no exit and reason ``open``."""
    positions = np.asarray(positions, dtype=np.float64)
    close = bars["close"].to_numpy(np.float64)
    before = np.concatenate(([0.0], positions[:-1]))
    changes = np.flatnonzero(before != positions)
    rows = []
    for k, i in enumerate(changes):
        if positions[i] == 0.0:
            continue
        j = changes[k + 1] if k + 1 < len(changes) else None
        rows.append({
            "side": "long" if positions[i] > 0 else "short",
            "entry_time": bars.index[i],
            "entry_price": close[i],
            "exit_time": bars.index[j] if j is not None else pd.NaT,
            "exit_price": close[j] if j is not None else np.nan,
            "bars_held": int((j if j is not None else len(positions) - 1) - i),
            "reason": signals[j] if j is not None else "open",
        })
    return pd.DataFrame(rows, columns=list(TRADE_COLUMNS))
