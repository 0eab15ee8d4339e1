"""Backtest-specific reading of bars: the tick size used for tick slippage. Bars themselves come from
``ibkrtool.data.sources``."""

from __future__ import annotations

from ibkrtool.backtest.costs import default_tick
from ibkrtool.data.sources import LoadedBars
from ibkrtool.errors import InputError
from ibkrtool.model import Instrument


def tick_size(loaded: LoadedBars, instrument: Instrument, override: float | None) -> float:
    """The price increment for tick slippage: ``--tick``, else the contract's min tick, else the default rule."""
    if override is not None:
        if not override > 0:
            raise InputError(f"--tick must be positive, got {override:g}")
        return override
    if loaded.min_tick:
        return loaded.min_tick
    price = float(loaded.bars["close"].iloc[0]) if len(loaded.bars) else 100.0
    return default_tick(price, instrument.is_forex, instrument.currency)
