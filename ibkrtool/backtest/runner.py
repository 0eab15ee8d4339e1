"""One backtest of a named strategy on one instrument's bars: strategy → engine → metrics. Pure (no I/O).

In-sample / out-of-sample (``split``): the strategy runs ONCE over all bars (its indicators only look back, so the
out-of-sample part sees a warmed-up strategy, as it would live); the engine then runs separately, with fresh
starting cash, on the first ``split`` fraction of bars and on the rest. Both get their own metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ibkrtool.backtest.annualise import periods_per_year
from ibkrtool.backtest.engine import ENGINE_VERSION, BacktestConfig, BacktestResult, run_backtest
from ibkrtool.backtest.stats import compute_metrics
from ibkrtool.backtest.validate import (
    check_bars,
    check_positions,
    find_gaps,
    gap_warning,
    outside_warning,
    session_index,
)
from ibkrtool.errors import InputError
from ibkrtool.model import BarSize, Instrument


@dataclass(frozen=True)
class Market:
    """What the bars are: instrument, bar length, price type and whether they cover regular hours only."""

    instrument: Instrument
    bar_size: BarSize
    what_to_show: str = "TRADES"
    rth: bool = True
    conid: int | None = None


@dataclass
class Report:
    """A finished backtest: engine result, metrics, and what produced them (for storing and rendering)."""

    strategy: str
    params: dict[str, Any]
    market: Market
    result: BacktestResult
    metrics: dict[str, Any]
    indicators: pd.DataFrame | None = None
    warnings: list[str] = field(default_factory=list)
    segments: dict[str, dict[str, Any]] = field(default_factory=dict)  # "in_sample"/"out_of_sample" metrics

    @property
    def engine_version(self) -> str:
        return ENGINE_VERSION


def evaluate(bars: pd.DataFrame, positions: np.ndarray, config: BacktestConfig, market: Market,
             signals: np.ndarray | None = None) -> tuple[BacktestResult, dict[str, Any]]:
    """Run the engine on ``bars`` and compute its metrics (annualised for ``market``)."""
    result = run_backtest(bars, positions, config, signals)
    metrics = compute_metrics(
        result.equity, result.trades, result.position, bars, config.cash,
        periods_per_year(market.instrument, market.bar_size, market.rth),
        _bar_seconds(market.bar_size), config.fill,
    )
    return result, metrics


def _bar_seconds(bar_size: BarSize) -> float:
    try:
        return float(bar_size.seconds)
    except InputError:  # months
        return 30.4375 * 86400


def split_index(n: int, split: float) -> int:
    """Bars in the in-sample part; raises ``InputError`` unless both parts get at least two bars."""
    if not 0 < split < 1:
        raise InputError(f"--split must lie strictly between 0 and 1, got {split:g}")
    k = round(n * split)
    if k < 2 or n - k < 2:
        raise InputError(f"--split {split:g} leaves fewer than 2 bars on one side of {n} bars")
    return k


def backtest_strategy(
    bars: pd.DataFrame,
    strategy: Any,
    params: Any,
    config: BacktestConfig,
    market: Market,
    gaps: str = "warn",
    split: float | None = None,
    bar_warnings: list[str] | None = None,
) -> Report:
    """Run ``strategy`` (from ``ibkrtool.strategies``) with ``params`` on ``bars`` and backtest its positions.

    ``bar_warnings``: the result of ``check_market_bars`` when the caller already checked these bars (sweeps check
    once, not per combination). Raises ``InputError`` for empty/NaN bars, gaps when ``gaps="refuse"``, bad
    positions, bad config or split.
    """
    warnings = check_market_bars(bars, market, gaps) if bar_warnings is None else list(bar_warnings)
    config.check()
    out = strategy.run(bars, params)
    positions = check_positions(out.positions, len(bars))
    result, metrics = evaluate(bars, positions, config, market, out.signals)
    segments: dict[str, dict[str, Any]] = {}
    if split is not None:
        k = split_index(len(bars), split)
        segments["in_sample"] = evaluate(bars.iloc[:k], positions[:k], config, market, out.signals[:k])[1]
        segments["out_of_sample"] = evaluate(bars.iloc[k:], positions[k:], config, market, out.signals[k:])[1]
    return Report(
        strategy=strategy.name, params=_params_dict(params), market=market, result=result, metrics=metrics,
        indicators=out.indicators, warnings=warnings + result.warnings, segments=segments,
    )


def check_market_bars(bars: pd.DataFrame, market: Market, policy: str = "warn") -> list[str]:
    """Refuse unusable bars (``InputError``); return warnings about gaps and bars outside the assumed sessions.

    ``policy="refuse"`` turns gaps (and an unchecked calendar range) into ``InputError``.
    """
    check_bars(bars)
    if not market.bar_size.is_intraday:
        return []
    try:
        sessions = session_index(bars, market.instrument, market.rth, market.bar_size.seconds)
    except InputError as exc:  # e.g. dates outside the exchange calendar's coverage
        if policy == "refuse":
            raise
        return [f"gaps not checked: {exc}"]
    found = find_gaps(bars, market.instrument, market.bar_size, market.rth, sessions)
    warnings = [gap_warning(bars, found, policy), outside_warning(sessions, market.instrument, market.rth)]
    return [w for w in warnings if w]


def _params_dict(params: Any) -> dict[str, Any]:
    if params is None:
        return {}
    if hasattr(params, "__dataclass_fields__"):
        return {name: getattr(params, name) for name in params.__dataclass_fields__}
    return dict(params)


def run_record(report: Report, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``backtest_runs`` row of a report (without run_id/created_at), for ``store.backtests.save_backtest``."""
    config = report.result.config
    equity = report.result.equity
    return {
        "strategy": report.strategy,
        "params": report.params,
        "symbol": report.market.instrument.display,
        "conid": report.market.conid,
        "bar_size": str(report.market.bar_size),
        "what_to_show": report.market.what_to_show,
        "data_start": equity.index[0].to_pydatetime(),
        "data_end": equity.index[-1].to_pydatetime(),
        "fill_rule": config.fill,
        "cost_model": f"{config.commission.name}; slippage {config.slippage}",
        "settings": {
            "cash": config.cash, "size": str(config.size), "tick": config.tick, "rth": report.market.rth,
            "warnings": report.warnings, "segments": report.segments, **(settings or {}),
        },
        "metrics": report.metrics,
        "engine_version": report.engine_version,
    }
