"""Backtesting: an honest, vectorised engine with Interactive Brokers' costs, metrics, charts and sweeps.

``run_backtest(bars, positions, BacktestConfig(...))`` simulates target directions decided at each bar's close
(filled at the next open by default); ``backtest_strategy`` runs a registered strategy first and adds metrics.
The engine, costs and stats are pure; ``sources`` (database/CSV) and ``plot`` (files) are the I/O edges.
"""

from ibkrtool.backtest.costs import IB_FIXED, IB_TIERED, CommissionModel, Slippage, ib_forex, parse_commission
from ibkrtool.backtest.engine import ENGINE_VERSION, BacktestConfig, BacktestResult, run_backtest
from ibkrtool.backtest.runner import Market, Report, backtest_strategy
from ibkrtool.backtest.sizing import SizeRule, parse_size

__all__ = [
    "ENGINE_VERSION", "IB_FIXED", "IB_TIERED", "BacktestConfig", "BacktestResult", "CommissionModel", "Market",
    "Report", "SizeRule", "Slippage", "backtest_strategy", "ib_forex", "parse_commission", "parse_size",
    "run_backtest",
]
