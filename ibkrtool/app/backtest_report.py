"""What ``app.backtest`` returns: one ``SymbolRun`` per instrument in a ``BacktestReport``, or a ``SweepReport``.

Plain data for the CLI to render and a Python user to read: metrics, trades and equity as pandas objects, the stored
run ids, the warnings. Nothing here prints or touches the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ibkrtool.app.outcome import Failures
from ibkrtool.backtest.engine import BacktestConfig
from ibkrtool.backtest.runner import Report
from ibkrtool.backtest.stats import drawdown

STAMP = "%Y-%m-%dT%H:%M:%SZ"


@dataclass
class SymbolRun:
    """One instrument's backtest: the runner's ``Report``, the bars it ran on, and its ``backtest_runs`` id."""

    report: Report
    bars: pd.DataFrame
    run_id: str | None = None

    @property
    def symbol(self) -> str:
        return self.report.market.instrument.display

    @property
    def metrics(self) -> dict[str, Any]:
        return self.report.metrics

    @property
    def config(self) -> BacktestConfig:
        return self.report.result.config

    @property
    def trades(self) -> pd.DataFrame:
        return self.report.result.trades

    @property
    def equity(self) -> pd.Series:
        return self.report.result.equity

    @property
    def warnings(self) -> list[str]:
        return self.report.warnings

    def as_dict(self) -> dict[str, Any]:
        """The run as JSON-safe data (what ``--json`` prints)."""
        from ibkrtool.store.backtests import plain

        report, config = self.report, self.config
        return plain({
            "run_id": self.run_id, "strategy": report.strategy, "symbol": self.symbol,
            "bar_size": str(report.market.bar_size), "params": report.params, "fill": config.fill,
            "commission": config.commission.name, "slippage": str(config.slippage), "size": str(config.size),
            "engine_version": report.engine_version, "metrics": report.metrics, "segments": report.segments,
            "warnings": report.warnings,
        })


@dataclass
class BacktestReport:
    """Every instrument's run, in the order asked, plus the journal's run id and the charts written."""

    runs: list[SymbolRun]
    journal_id: str | None = None
    charts: list[Path] = field(default_factory=list)
    failures: Failures = field(default_factory=Failures)

    @property
    def run_ids(self) -> list[str | None]:
        return [run.run_id for run in self.runs]

    @property
    def warnings(self) -> list[str]:
        """Every run's warnings, prefixed with the symbol when there are several runs."""
        several = len(self.runs) > 1
        return [f"{run.symbol}: {w}" if several else w for run in self.runs for w in run.warnings]

    def as_json(self) -> dict[str, Any] | list[dict[str, Any]]:
        """One run's ``as_dict``, or the list of them for several symbols."""
        out = [run.as_dict() for run in self.runs]
        return out[0] if len(out) == 1 else out

    def combined(self) -> list[dict[str, Any]]:
        """One row per symbol and a last row summing them (each symbol had its own starting cash)."""
        rows: list[dict[str, Any]] = [
            {"symbol": run.symbol, "return %": round(run.metrics["total_return_pct"], 4),
             "sharpe": _round(run.metrics["sharpe"]), "max dd %": round(run.metrics["max_drawdown_pct"], 4),
             "trades": run.metrics["trades"], "net P&L": round(run.metrics["net_pnl"], 2)} for run in self.runs]
        start = sum(run.metrics["start_equity"] for run in self.runs)
        final = sum(run.metrics["final_equity"] for run in self.runs)
        rows.append({"symbol": "all (sum of runs)", "return %": round(100 * (final / start - 1), 4), "sharpe": None,
                     "max dd %": None, "trades": sum(run.metrics["trades"] for run in self.runs),
                     "net P&L": round(sum(run.metrics["net_pnl"] for run in self.runs), 2)})
        return rows

    def trades_frame(self) -> pd.DataFrame:
        """Every run's trades, a ``symbol`` column first, times as ISO UTC text (what ``--trades`` writes)."""
        parts = []
        for run in self.runs:
            t = run.trades.copy()
            t.insert(0, "symbol", run.symbol)
            for col in ("entry_time", "exit_time"):
                t[col] = pd.to_datetime(t[col]).dt.strftime(STAMP) if len(t) else t[col]
            parts.append(t)
        return pd.concat(parts, ignore_index=True)

    def equity_frame(self) -> pd.DataFrame:
        """Every run's equity curve: symbol, ts, equity, position, drawdown_pct (what ``--equity`` writes)."""
        parts = []
        for run in self.runs:
            eq = run.equity
            parts.append(pd.DataFrame({
                "symbol": run.symbol, "ts": eq.index.strftime(STAMP), "equity": eq.to_numpy(),
                "position": run.report.result.position.to_numpy(),
                "drawdown_pct": 100 * drawdown(eq.to_numpy(), run.config.cash)}))
        return pd.concat(parts, ignore_index=True)


@dataclass
class SweepReport:
    """A ranked sweep: one ``table`` row per symbol and combination (ranked within each symbol), and its runs."""

    table: pd.DataFrame
    reports: list[Report]
    combinations: int
    sort: str  # the metric ranked on, e.g. "sharpe", "total_return_pct"
    split: float | None = None
    run_ids: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    journal_id: str | None = None

    def rows(self) -> list[dict[str, Any]]:
        """The ranking as records, missing values as None (what ``--json`` prints)."""
        frame = self.table.astype(object).where(self.table.notna(), None)
        return frame.to_dict(orient="records")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
