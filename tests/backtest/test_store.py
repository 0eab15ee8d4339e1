"""``store/backtests.py`` on both backends: a run and its trades round-trip; a failed write leaves nothing."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select

from ibkrtool.backtest.engine import BacktestConfig
from ibkrtool.backtest.runner import Market, backtest_strategy, run_record
from ibkrtool.errors import StoreError
from ibkrtool.model import BarSize, Instrument
from ibkrtool.store.backtests import load_backtest, save_backtest
from ibkrtool.store.engine import open_engine
from ibkrtool.store.migrate import init_db
from ibkrtool.store.tables import backtest_runs
from ibkrtool.strategies import get_strategy
from tests.backtest.helpers import session_bars


def a_report():
    bars = session_bars("2024-03-04", "2024-03-22")
    strategy = get_strategy("pivot-breakout")
    return backtest_strategy(bars, strategy, strategy.defaults(), BacktestConfig(),
                             Market(Instrument.parse("SPY"), BarSize.parse("5m"), conid=756733), split=0.5)


def test_round_trip(db_url: str) -> None:
    engine = open_engine(db_url)
    init_db(engine)
    report = a_report()
    run_id = save_backtest(engine, run_record(report), report.result.trades)
    run, trades = load_backtest(engine, run_id)
    assert run["params"] == {"pivot": 5, "ma_period": 50, "ma_type": "sma"}
    assert run["metrics"]["trades"] == len(report.result.trades) == len(trades) > 0
    assert run["settings"]["segments"]["in_sample"]["bars"] > 0
    assert run["cost_model"].startswith("ib-fixed") and run["bar_size"] == "5m" and run["what_to_show"] == "TRADES"
    assert list(trades["trade_no"]) == list(range(1, len(trades) + 1))
    np.testing.assert_allclose(trades["net_pnl"], report.result.trades["net_pnl"])
    assert trades["entry_ts"].iloc[0] == report.result.trades["entry_time"].iloc[0]
    assert load_backtest(engine, "bt-missing") is None
    engine.dispose()


def test_a_failed_write_leaves_nothing(db_url: str) -> None:
    engine = open_engine(db_url)
    init_db(engine)
    report = a_report()
    trades = report.result.trades.copy()
    trades.loc[trades.index[-1], "side"] = None  # NOT NULL column: the last trade row fails
    with pytest.raises(StoreError, match="could not store backtest"):
        save_backtest(engine, run_record(report), trades)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(backtest_runs)).scalar_one() == 0
    engine.dispose()
