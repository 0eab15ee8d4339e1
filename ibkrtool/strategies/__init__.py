"""Strategies: pure functions from bars and parameters to a per-bar target position, registered by name.

``get_strategy("pivot-breakout").run(bars, params)``; parameters from text with ``parse_params``.
"""

from ibkrtool.strategies import ema_aroon, pivot_breakout  # noqa: F401  (registers the strategies)
from ibkrtool.strategies.base import (
    Strategy,
    StrategyResult,
    check_bars,
    get_strategy,
    list_strategies,
    param_fields,
    parse_param_args,
    parse_params,
)
from ibkrtool.strategies.trades import round_trips

__all__ = [
    "Strategy",
    "StrategyResult",
    "check_bars",
    "get_strategy",
    "list_strategies",
    "param_fields",
    "parse_param_args",
    "parse_params",
    "round_trips",
]
