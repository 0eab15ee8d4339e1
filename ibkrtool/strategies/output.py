"""What a strategy run produces for users: the per-bar positions table and how to run either engine."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ibkrtool.errors import InputError
from ibkrtool.strategies.base import Strategy, StrategyResult, check_bars

ENGINES = ("python", "r")


def run_engine(strategy: Strategy, bars: pd.DataFrame, params: Any, engine: str = "python") -> StrategyResult:
    """Run ``strategy`` on ``bars`` with the Python or R engine. Raises ``InputError`` for bad bars (checked before
    either engine runs), an unknown engine, or R problems (see ``r_engine.run_r``)."""
    if engine not in ENGINES:
        raise InputError(f"--engine {engine!r} must be one of {', '.join(ENGINES)}")
    if engine == "python":
        return strategy.run(bars, params)
    from ibkrtool.strategies.r_engine import run_r

    check_bars(bars, strategy.warmup(params) + 1, strategy.name)
    return run_r(strategy, bars, params)


def positions_frame(bars: pd.DataFrame, result: StrategyResult) -> pd.DataFrame:
    """Per-bar table indexed by UTC bar start: ``close, position, signal`` then the indicator columns."""
    frame = pd.DataFrame({"close": bars["close"].to_numpy(), "position": result.positions, "signal": result.signals},
                         index=bars.index)
    return pd.concat([frame, result.indicators.set_axis(bars.index)], axis=1)


def write_positions_csv(frame: pd.DataFrame, target: Any) -> int:
    """Write a positions table as CSV (``ts`` ISO 8601 UTC with Z first). Returns rows.

    Floats keep 12 significant digits: indicator arithmetic leaves noise in the last bits (-78.00000000000864),
    which a reader should not mistake for information; prices and positions are far inside 12 digits.
    """
    out = frame.copy()
    out.insert(0, "ts", frame.index.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ"))
    out.to_csv(target, index=False, lineterminator="\n", float_format="%.12g")
    return len(out)
