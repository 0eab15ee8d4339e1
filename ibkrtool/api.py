"""ibkrtool as a library: every command's function with its request and report types, in one namespace.

    from ibkrtool import api
    ws = api.Workspace()      # settings from IBKRTOOL_* and the config file, like the CLI
    report = api.run_strategy(ws, api.StrategyRequest("pivot-breakout", instruments=(api.Instrument.parse("SPY"),)))

Each function is the one the CLI calls; errors are the typed exceptions of ``ibkrtool.errors``.
"""

from __future__ import annotations

from ibkrtool.app.account import AccountReport, AccountRequest, account_summary
from ibkrtool.app.backfill import BackfillOutcome, BackfillRequest, backfill
from ibkrtool.app.backtest import BacktestRequest, SweepRequest, backtest, sweep
from ibkrtool.app.backtest_report import BacktestReport, SweepReport
from ibkrtool.app.collect import CollectReport, CollectRequest, collect
from ibkrtool.app.db import ExportRequest, ImportRequest, export_bars, import_bars
from ibkrtool.app.db import init as init_db
from ibkrtool.app.db import status as db_status
from ibkrtool.app.execute import ExecuteReport, ExecuteReports, ExecuteRequest, execute, execute_each
from ibkrtool.app.live import LiveReport, LiveRequest, run_live
from ibkrtool.app.resample import ResampleReport, ResampleRequest, resample
from ibkrtool.app.strategy import StrategyReport, StrategyRequest, run_strategy
from ibkrtool.app.workspace import Workspace
from ibkrtool.errors import GatewayError, IbkrToolError, IbRefused, InputError, StoreError
from ibkrtool.model import BarSize, Instrument
from ibkrtool.model.when import When
from ibkrtool.settings import Settings

__all__ = [
    "AccountReport",
    "AccountRequest",
    "BackfillOutcome",
    "BackfillRequest",
    "BacktestReport",
    "BacktestRequest",
    "BarSize",
    "CollectReport",
    "CollectRequest",
    "ExecuteReport",
    "ExecuteReports",
    "ExecuteRequest",
    "ExportRequest",
    "GatewayError",
    "IbRefused",
    "IbkrToolError",
    "ImportRequest",
    "InputError",
    "Instrument",
    "LiveReport",
    "LiveRequest",
    "ResampleReport",
    "ResampleRequest",
    "Settings",
    "StoreError",
    "StrategyReport",
    "StrategyRequest",
    "SweepReport",
    "SweepRequest",
    "When",
    "Workspace",
    "account_summary",
    "backfill",
    "backtest",
    "collect",
    "db_status",
    "execute",
    "execute_each",
    "export_bars",
    "import_bars",
    "init_db",
    "resample",
    "run_live",
    "run_strategy",
    "sweep",
]
