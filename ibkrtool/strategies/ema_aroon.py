"""``ema-aroon``: trend following with an EMA crossover confirmed by Aroon (the EUR.USD seed)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ibkrtool.indicators import aroon, ema
from ibkrtool.strategies.base import Strategy, StrategyResult, register, signals_from_positions
from ibkrtool.strategies.latch import latch

EMA_TOLERANCE = 1e-12


@dataclass(frozen=True)
class EmaAroonParams:
    """Defaults suit 1- and 5-minute forex bars: EMA 20/50 (~the last hour vs ~4 hours on 5m), Aroon 25."""

    ema_fast: int = 20
    ema_slow: int = 50
    aroon_n: int = 25
    aroon_upper: float = 70.0
    aroon_lower: float = 30.0
    allow_short: bool = False

    def __post_init__(self) -> None:
        if min(self.ema_fast, self.ema_slow, self.aroon_n) < 1:
            raise ValueError("ema_fast, ema_slow and aroon_n must be at least 1")
        if self.ema_fast >= self.ema_slow:
            raise ValueError(f"ema_fast ({self.ema_fast}) must be shorter than ema_slow ({self.ema_slow})")
        if not 0 <= self.aroon_lower <= self.aroon_upper <= 100:
            raise ValueError("need 0 <= aroon_lower <= aroon_upper <= 100")


def _warmup(p: EmaAroonParams) -> int:
    return max(p.ema_slow, p.aroon_n) - 1


def run(bars: pd.DataFrame, p: EmaAroonParams) -> StrategyResult:
    """Rules, evaluated on each bar's CLOSE (EMA and Aroon as TTR defines them, Aroon on high/low):

    * Long when ``ema_fast > ema_slow`` and ``aroon_up >= aroon_upper`` and ``aroon_down <= aroon_lower``
      (``entry:long``).
    * Exit a long when either condition reverses: ``ema_fast < ema_slow`` (``exit:ema-cross``, checked first) or
      ``aroon_down > aroon_up`` (``exit:aroon``).
    * With ``allow_short`` the mirror image: short when ``ema_fast < ema_slow`` and ``aroon_down >= aroon_upper``
      and ``aroon_up <= aroon_lower`` (``entry:short``); exit on ``ema_fast > ema_slow`` or
      ``aroon_up > aroon_down``. A bar that exits one side and meets the other side's entry flips the position.
    * Warm-up bars (any indicator NaN) never trigger anything. r/functions.R implements the same rules.
    * "fast > slow" means by more than ``EMA_TOLERANCE`` (1e-12) relative: on flat prices both EMAs converge to the
      same number and only rounding (1e-16) would order them, which must not flip a position, nor make the R and
      Python engines disagree.
    """
    high, low, close = (bars[c].to_numpy(np.float64) for c in ("high", "low", "close"))
    fast, slow = ema(close, p.ema_fast), ema(close, p.ema_slow)
    ar = aroon(high, low, p.aroon_n)
    with np.errstate(invalid="ignore"):
        # EMAs that differ by rounding noise only count as equal (see the docstring)
        tol = EMA_TOLERANCE * np.abs(slow)
        ema_up, ema_down = fast - slow > tol, fast - slow < -tol
        long_entry = ema_up & (ar.up >= p.aroon_upper) & (ar.down <= p.aroon_lower)
        short_entry = ema_down & (ar.down >= p.aroon_upper) & (ar.up <= p.aroon_lower)
        aroon_up, aroon_down = ar.up > ar.down, ar.down > ar.up
    if not p.allow_short:
        short_entry = np.zeros_like(long_entry)
    positions = latch(long_entry, ema_down | aroon_down, short_entry, ema_up | aroon_up)
    signals = _signals(positions, ema_down, ema_up)
    indicators = pd.DataFrame(
        {"ema_fast": fast, "ema_slow": slow, "aroon_up": ar.up, "aroon_down": ar.down,
         "aroon_oscillator": ar.oscillator},
        index=bars.index,
    )
    return StrategyResult(positions, signals, indicators, _warmup(p))


def _signals(positions: np.ndarray, ema_down: np.ndarray, ema_up: np.ndarray) -> np.ndarray:
    signals = signals_from_positions(
        positions,
        {(0.0, 1.0): "entry:long", (0.0, -1.0): "entry:short", (1.0, 0.0): "exit", (-1.0, 0.0): "exit",
         (1.0, -1.0): "flip:short", (-1.0, 1.0): "flip:long"},
    )
    for i in np.flatnonzero(signals == "exit"):
        crossed = ema_down[i] if positions[i - 1] == 1.0 else ema_up[i]
        signals[i] = "exit:ema-cross" if crossed else "exit:aroon"
    return signals


STRATEGY = register(
    Strategy(
        name="ema-aroon",
        params_type=EmaAroonParams,
        description="Long (short with allow_short) when the EMA crossover and Aroon agree on the trend; "
        "exit when either reverses.",
        compute=run,
        warmup_of=_warmup,
    )
)
