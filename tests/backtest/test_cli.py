"""``ibkrtool backtest`` end to end on a real database (SQLite and PostgreSQL): store → strategy → engine → store."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from ibkrtool.cli.main import app
from ibkrtool.model.contract import Contract
from ibkrtool.store.backtests import load_backtest
from ibkrtool.store.bars import write_bars
from ibkrtool.store.contracts import upsert_contract
from ibkrtool.store.engine import open_engine
from ibkrtool.store.migrate import init_db
from ibkrtool.store.tables import backtest_runs, backtest_trades
from tests.backtest.helpers import session_bars

SPY, QQQ = 756733, 320227571


def seed(url: str, gap: bool = False) -> pd.DataFrame:
    engine = open_engine(url)
    init_db(engine)
    bars = session_bars("2024-03-04", "2024-04-26")
    if gap:
        bars = bars.drop(bars.index[40])
    for conid, symbol, seed_ in ((SPY, "SPY", 0), (QQQ, "QQQ", 1)):
        upsert_contract(engine, Contract(conid=conid, symbol=symbol, primary_exchange="ARCA"))
        frame = bars.copy()
        frame[["open", "high", "low", "close"]] *= 1 + seed_ * 0.5
        write_bars(engine, conid, "5m", "TRADES", frame)
    engine.dispose()
    return bars


def counts(url: str) -> tuple[int, int]:
    engine = open_engine(url)
    with engine.connect() as conn:
        runs = conn.execute(select(func.count()).select_from(backtest_runs)).scalar_one()
        trades = conn.execute(select(func.count()).select_from(backtest_trades)).scalar_one()
    engine.dispose()
    return runs, trades


def invoke(url: str, *args: str, input: str | None = None):
    return CliRunner().invoke(app, ["--db", url, "backtest", *args], input=input)


def test_backtest_from_the_store_writes_outputs_and_stores_the_run(db_url: str, tmp_path) -> None:
    seed(db_url)
    trades_csv, equity_csv = tmp_path / "trades.csv", tmp_path / "equity.csv"
    result = invoke(db_url, "pivot-breakout", "--symbol", "SPY", "--bar-size", "5m", "--start", "2024-03-01",
                    "--end", "2024-04-30", "--param", "pivot=3", "--size", "equity:0.5", "--slippage", "1tick",
                    "--trades", str(trades_csv), "--equity", str(equity_csv), "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["params"]["pivot"] == 3 and out["fill"] == "next-open" and out["commission"] == "ib-fixed"
    metrics = out["metrics"]
    assert metrics["trades"] > 5 and metrics["bars"] == 39 * 78  # 40 weekdays less Good Friday; 78 bars each
    trades = pd.read_csv(trades_csv)
    assert len(trades) == metrics["trades"] and set(trades["symbol"]) == {"SPY"}
    equity = pd.read_csv(equity_csv)
    assert len(equity) == metrics["bars"] and equity["equity"].iloc[-1] == pytest.approx(metrics["final_equity"])

    engine = open_engine(db_url)
    run, stored = load_backtest(engine, out["run_id"])
    engine.dispose()
    assert run["strategy"] == "pivot-breakout" and run["symbol"] == "SPY" and run["conid"] == SPY
    assert run["engine_version"] == out["engine_version"] and run["fill_rule"] == "next-open"
    assert run["metrics"]["final_equity"] == pytest.approx(metrics["final_equity"])
    assert run["data_start"] == pd.Timestamp("2024-03-04 14:30", tz="UTC")
    assert len(stored) == len(trades)
    assert stored["net_pnl"].to_numpy() == pytest.approx(trades["net_pnl"].to_numpy())


def test_several_symbols_give_one_run_each_and_a_combined_summary(sqlite_url: str) -> None:
    seed(sqlite_url)
    result = invoke(sqlite_url, "ema-aroon", "-s", "SPY,QQQ", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [o["symbol"] for o in out] == ["SPY", "QQQ"]
    assert "combined" in result.stderr
    assert counts(sqlite_url)[0] == 2


def test_csv_on_stdin(sqlite_url: str, tmp_path) -> None:
    bars = session_bars("2024-03-04", "2024-03-29")
    csv = bars.reset_index()[["ts", "open", "high", "low", "close", "volume"]].to_csv(index=False)
    result = invoke(sqlite_url, "pivot-breakout", "--input", "-", "--symbol", "SPY", "--no-store",
                    "--fill", "close", "--json", input=csv)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["metrics"]["bars"] == len(bars) and out["fill"] == "close" and out["run_id"] is None


@pytest.mark.parametrize("args, message", [
    (["--commission", "flat-fee"], "unknown commission model"),
    (["--cash", "-5"], "starting cash"),
    (["--size", "fixed:-3"], "size"),
    (["--start", "2030-01-01", "--end", "2030-02-01"], "no 5m bars"),
    (["--gaps", "refuse"], "gap"),
    (["--param", "nonsense=1"], "no parameter"),
    (["--slippage", "lots"], "slippage"),
    (["--split", "1.5"], "split"),
    (["--json", "--trades", "-"], "both write to stdout"),
    (["--grid", "pivot=3,5", "--plot", "x.png"], "describe one run"),
    (["--what-to-show", "PRICES"], "what-to-show"),
    (["--plot", "chart.jpg"], "--plot"),
])
def test_bad_input_exits_3_and_stores_nothing(sqlite_url: str, args: list[str], message: str) -> None:
    seed(sqlite_url, gap=True)
    result = invoke(sqlite_url, "pivot-breakout", "-s", "SPY", *args)
    assert result.exit_code == 3, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert counts(sqlite_url) == (0, 0)


def test_gaps_warn_by_default(sqlite_url: str) -> None:
    seed(sqlite_url, gap=True)
    result = invoke(sqlite_url, "pivot-breakout", "-s", "SPY", "--no-store")
    assert result.exit_code == 0, result.output
    assert "1 gap(s) inside sessions" in result.stderr


def test_sweep_ranks_every_combination_and_stores_each(sqlite_url: str) -> None:
    seed(sqlite_url)
    result = invoke(sqlite_url, "pivot-breakout", "-s", "SPY", "--grid", "pivot=3,5 ma_period=10,20",
                    "--sort", "return", "--split", "0.7", "--json", "--workers", "2")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 4 and {(r["pivot"], r["ma_period"]) for r in rows} == {(3, 10), (3, 20), (5, 10), (5, 20)}
    ranked = [r["return%"] for r in rows]
    assert ranked == sorted(ranked, reverse=True)
    assert all("oos_return%" in r for r in rows)
    assert counts(sqlite_url)[0] == 4


def test_help_warns_about_overfitting() -> None:
    result = CliRunner().invoke(app, ["backtest", "--help"])
    assert result.exit_code == 0 and "overfitting" in result.output


def test_forex_pair_uses_ib_forex_costs_and_midpoint_bars(sqlite_url: str) -> None:
    engine = open_engine(sqlite_url)
    init_db(engine)
    upsert_contract(engine, Contract(conid=12087792, symbol="EUR", sec_type="CASH", exchange="IDEALPRO",
                                     currency="USD", local_symbol="EUR.USD", min_tick=0.00005))
    bars = session_bars("2024-03-04", "2024-03-15")
    bars[["open", "high", "low", "close"]] /= 90.0
    write_bars(engine, 12087792, "5m", "MIDPOINT", bars)
    engine.dispose()
    result = invoke(sqlite_url, "ema-aroon", "-s", "EUR.USD", "--size", "fixed:100000", "--slippage", "1tick",
                    "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["commission"] == "ib-forex" and out["metrics"]["trades"] > 0
    assert out["metrics"]["periods_per_year"] == 260 * 288  # forex: 24 h sessions, 260 a year
    run, trades = load_backtest(open_engine(sqlite_url), out["run_id"])
    assert run["what_to_show"] == "MIDPOINT" and run["settings"]["tick"] == 0.00005
    assert (trades["commission"] >= 4.0 - 1e-9).all()  # USD 2.00 minimum per order, two orders per trade


def test_plot_per_symbol_with_zoom(sqlite_url: str, tmp_path) -> None:
    from ibkrtool.backtest.plot import FORMATS
    from ibkrtool.cli.backtest import PLOT_FORMATS

    assert FORMATS == PLOT_FORMATS
    seed(sqlite_url)
    out = tmp_path / "chart.png"
    result = invoke(sqlite_url, "pivot-breakout", "-s", "SPY,QQQ", "--no-store", "--plot", str(out),
                    "--from", "2024-04-01", "--to", "2024-04-05")
    assert result.exit_code == 0, result.output
    for name in ("chart-SPY.png", "chart-QQQ.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
