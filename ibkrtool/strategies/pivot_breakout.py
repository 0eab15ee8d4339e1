"""``pivot-breakout``: long-only breakout above confirmed swing highs in an uptrend (the SPY seed)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ibkrtool.indicators import ema, sma, swing_pivots
from ibkrtool.strategies.base import Strategy, StrategyResult, register, signals_from_positions
from ibkrtool.strategies.latch import latch

MA_TOLERANCE = 1e-12


@dataclass(frozen=True)
class PivotBreakoutParams:
    """``pivot``: bars on each side of a swing pivot. ``ma_period``/``ma_type`` (sma|ema): the trend filter."""

    pivot: int = 5
    ma_period: int = 50
    ma_type: str = "sma"

    def __post_init__(self) -> None:
        if self.pivot < 1 or self.ma_period < 1:
            raise ValueError("pivot and ma_period must be at least 1")
        if self.ma_type not in ("sma", "ema"):
            raise ValueError(f"ma_type must be sma or ema, got {self.ma_type!r}")


def _warmup(p: PivotBreakoutParams) -> int:
    # the MA needs ma_period bars; the first pivot needs `pivot` bars on each side and is confirmed `pivot` bars later
    return max(p.ma_period - 1, 2 * p.pivot)


def run(bars: pd.DataFrame, p: PivotBreakoutParams) -> StrategyResult:
    """Rules, all evaluated on the CLOSE of each bar, using only bars up to and including it:

    * ``ma`` = SMA (or EMA, TTR definitions) of the close over ``ma_period`` bars.
    * Swing pivots of strength ``pivot`` (a high strictly above the ``pivot`` highs on each side; likewise lows) are
      known ``pivot`` bars after the pivot bar. ``swing_high``/``swing_low`` = the most recent CONFIRMED pivot.
    * Flat → long when ``close > swing_high`` and ``close > ma`` (signal ``entry:breakout``); "above the MA" means by
      more than ``MA_TOLERANCE`` (1e-12) relative, so rounding noise on flat prices decides nothing.
    * Long → flat when ``close < swing_low`` (signal ``exit:trailing-stop``): the stop is always the most recent
      confirmed swing low, so it rises as higher lows are confirmed.
    * One position at a time, long only; a bar with no confirmed pivot yet or no MA cannot trigger anything.
    * r/functions.R implements the same rules (``--engine r``).
    """
    high, low, close = (bars[c].to_numpy(np.float64) for c in ("high", "low", "close"))
    ma = sma(close, p.ma_period) if p.ma_type == "sma" else ema(close, p.ma_period)
    piv = swing_pivots(high, low, p.pivot)
    with np.errstate(invalid="ignore"):
        # above the MA by more than rounding noise (relative 1e-12), so the R and Python engines decide alike
        entry = (close > piv.swing_high) & (close - ma > MA_TOLERANCE * np.abs(ma))
        exit_ = close < piv.swing_low
    positions = latch(entry, exit_)
    signals = signals_from_positions(positions, {(0.0, 1.0): "entry:breakout", (1.0, 0.0): "exit:trailing-stop"})
    indicators = pd.DataFrame(
        {"ma": ma, "swing_high": piv.swing_high, "swing_low": piv.swing_low,
         "pivot_high": piv.pivot_high, "pivot_low": piv.pivot_low},
        index=bars.index,
    )
    return StrategyResult(positions, signals, indicators, _warmup(p))


STRATEGY = register(
    Strategy(
        name="pivot-breakout",
        params_type=PivotBreakoutParams,
        description="Long on a close above the last confirmed swing high while above the MA; "
        "exit on a close below the last confirmed swing low.",
        compute=run,
        warmup_of=_warmup,
    )
)
