"""Performance metrics of a backtest. Pure functions of the equity curve and the trades table.

Conventions:

* Per-bar returns are simple returns of the mark-to-market equity at each bar's close; the first is measured
  against the starting cash.
* Annualisation uses ``periods_per_year`` — bars per year derived from the bar length and the exchange's trading
  hours (``annualise.periods_per_year``), not a fixed 252. Volatility = std(returns, ddof=1) × √periods;
  Sharpe = mean / std × √periods; Sortino = mean / downside deviation × √periods, where downside deviation is
  √mean(min(r, 0)²). The risk-free rate is 0.
* CAGR uses calendar time from the first bar's start to the last bar's end (365.25-day years).
* Drawdown is measured from the running peak of equity (starting cash included); its duration is the longest
  stretch from a peak until equity first regains it (or the end of data), in bars and in time.
* Trade statistics use NET P&L (after commission). Profit factor = gross wins / |gross losses| of net P&L;
  None when there are no losing trades. Exposure = share of bars with a position held at the close.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def bar_returns(equity: np.ndarray, start_cash: float) -> np.ndarray:
    """Simple return of each bar's closing equity over the previous one (the first over ``start_cash``)."""
    previous = np.concatenate([[start_cash], equity[:-1]])
    return equity / previous - 1.0


def drawdown(equity: np.ndarray, start_cash: float) -> np.ndarray:
    """Fractional drawdown at each bar (≤ 0) from the running peak, starting cash counted as the first peak."""
    peak = np.maximum.accumulate(np.concatenate([[start_cash], equity]))[1:]
    return equity / peak - 1.0


def _longest_drawdown(dd: np.ndarray, index: pd.DatetimeIndex) -> tuple[int, pd.Timedelta]:
    """Longest run of bars below the peak: (bars, time from the last peak bar to recovery or the last bar)."""
    under = dd < 0
    if not under.any():
        return 0, pd.Timedelta(0)
    edges = np.diff(np.concatenate([[0], under.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # run = [start, end)
    k = int(np.argmax(ends - starts))
    start, end = int(starts[k]), int(ends[k])
    peak_time = index[start - 1] if start > 0 else index[0]
    until = index[end] if end < len(index) else index[-1]
    return end - start, until - peak_time


def return_metrics(equity: pd.Series, start_cash: float, periods_per_year: float, bar_seconds: float) -> dict[str, Any]:
    """Return/risk metrics of one equity curve (see module doc for every definition)."""
    values = equity.to_numpy(np.float64)
    r = bar_returns(values, start_cash)
    std = float(np.std(r, ddof=1)) if r.size > 1 else float("nan")
    downside = float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2))) if r.size else float("nan")
    scale = math.sqrt(periods_per_year)
    total = values[-1] / start_cash - 1.0
    span_s = (equity.index[-1] - equity.index[0]).total_seconds() + bar_seconds
    years = span_s / (365.25 * 86400)
    cagr = (values[-1] / start_cash) ** (1 / years) - 1.0 if years > 0 and values[-1] > 0 else float("nan")
    dd = drawdown(values, start_cash)
    dd_bars, dd_time = _longest_drawdown(dd, equity.index)
    return {
        "start_equity": float(start_cash),
        "final_equity": float(values[-1]),
        "total_return_pct": 100.0 * total,
        "cagr_pct": _finite(100.0 * cagr),
        "volatility_ann_pct": _finite(100.0 * std * scale),
        "sharpe": _finite(float(np.mean(r)) / std * scale) if std > 0 else None,
        "sortino": _finite(float(np.mean(r)) / downside * scale) if downside > 0 else None,
        "max_drawdown_pct": 100.0 * float(dd.min()),
        "max_drawdown_bars": dd_bars,
        "max_drawdown_duration": str(dd_time),
    }


def trade_metrics(trades: pd.DataFrame) -> dict[str, Any]:
    """Counts and P&L statistics over closed trades (net of commission)."""
    net = trades["net_pnl"].to_numpy(np.float64) if len(trades) else np.empty(0)
    wins, losses = net[net > 0], net[net < 0]
    loss_sum = float(-losses.sum())
    return {
        "trades": int(net.size),
        "win_rate_pct": _finite(100.0 * wins.size / net.size) if net.size else None,
        "profit_factor": _finite(float(wins.sum()) / loss_sum) if loss_sum > 0 else None,
        "avg_win": _finite(float(wins.mean())) if wins.size else None,
        "avg_loss": _finite(float(losses.mean())) if losses.size else None,
        "expectancy": _finite(float(net.mean())) if net.size else None,
        "net_pnl": float(net.sum()),
        "commissions": float(trades["commission"].sum()) if len(trades) else 0.0,
        "avg_bars_held": _finite(float(trades["bars_held"].mean())) if len(trades) else None,
    }


def buy_and_hold_equity(bars: pd.DataFrame, start_cash: float, fill: str) -> pd.Series:
    """Start cash invested (fractionally, without costs) at the first fill price the strategy could have had."""
    first = float(bars["open"].iloc[0] if fill == "next-open" else bars["close"].iloc[0])
    return pd.Series(start_cash * bars["close"].to_numpy(np.float64) / first, index=bars.index, name="buy_and_hold")


def compute_metrics(
    equity: pd.Series,
    trades: pd.DataFrame,
    position: pd.Series,
    bars: pd.DataFrame,
    start_cash: float,
    periods_per_year: float,
    bar_seconds: float,
    fill: str = "next-open",
) -> dict[str, Any]:
    """All metrics of a backtest plus ``buy_and_hold`` (the same metrics for holding the instrument)."""
    out: dict[str, Any] = {
        "bars": len(equity),
        "start": equity.index[0].isoformat(),
        "end": equity.index[-1].isoformat(),
        "periods_per_year": float(periods_per_year),
    }
    out.update(return_metrics(equity, start_cash, periods_per_year, bar_seconds))
    out.update(trade_metrics(trades))
    out["exposure_pct"] = 100.0 * float(np.count_nonzero(position.to_numpy()) / len(position))
    hold = buy_and_hold_equity(bars, start_cash, fill)
    out["buy_and_hold"] = return_metrics(hold, start_cash, periods_per_year, bar_seconds)
    return out
