"""``ibkrtool backtest`` end to end on a real database (SQLite and PostgreSQL): store → strategy → engine → store."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys

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
    from ibkrtool.app.backtest import PLOT_FORMATS
    from ibkrtool.backtest.plot import FORMATS

    assert FORMATS == PLOT_FORMATS
    seed(sqlite_url)
    out = tmp_path / "chart.png"
    result = invoke(sqlite_url, "pivot-breakout", "-s", "SPY,QQQ", "--no-store", "--plot", str(out),
                    "--plot-start", "2024-04-01", "--plot-end", "2024-04-05")
    assert result.exit_code == 0, result.output
    for name in ("chart-SPY.png", "chart-QQQ.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def naive_csv(path, start: str = "2024-03-04", end: str = "2024-03-15") -> pd.DataFrame:
    """Bars written to ``path`` with UTC wall-clock stamps that carry NO zone."""
    bars = session_bars(start, end)
    frame = bars.reset_index()[["ts", "open", "high", "low", "close", "volume"]]
    frame["ts"] = frame["ts"].dt.strftime("%Y-%m-%d %H:%M:%S")
    frame.to_csv(path, index=False)
    return bars


def stored_run(url: str, run_id: str) -> dict:
    engine = open_engine(url)
    run, _ = load_backtest(engine, run_id)
    engine.dispose()
    return run


@pytest.mark.parametrize("option", ["--start", "--end", "--plot-start", "--plot-end"])
def test_a_time_without_a_zone_is_refused_with_the_fix(sqlite_url: str, option: str, tmp_path) -> None:
    seed(sqlite_url)
    result = invoke(sqlite_url, "pivot-breakout", "-s", "SPY", "--plot", str(tmp_path / "c.png"),
                    option, "2024-03-04T10:00")
    assert result.exit_code == 3, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert f"{option} '2024-03-04T10:00' has no time zone" in result.stderr and "--tz America/New_York" in result.stderr
    assert counts(sqlite_url) == (0, 0) and not (tmp_path / "c.png").exists()


def test_tz_reads_a_time_without_a_zone(sqlite_url: str) -> None:
    seed(sqlite_url)
    result = invoke(sqlite_url, "pivot-breakout", "-s", "SPY", "--start", "2024-03-04T10:00", "--tz",
                    "America/New_York", "--json")
    assert result.exit_code == 0, result.output
    run = stored_run(sqlite_url, json.loads(result.stdout)["run_id"])
    assert run["data_start"] == pd.Timestamp("2024-03-04 15:00", tz="UTC")  # 10:00 in New York


def test_a_csv_without_zones_needs_tz_and_is_stored_into_a_fresh_database(db_url: str, tmp_path) -> None:
    bars = naive_csv(tmp_path / "bars.csv")
    refused = invoke(db_url, "pivot-breakout", "--input", str(tmp_path / "bars.csv"), "--json")
    assert refused.exit_code == 3, refused.output
    assert "no time zone" in refused.stderr and "--tz" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    if db_url.startswith("sqlite"):
        assert not (tmp_path / "ibkrtool-test.db").exists()  # nothing was written, not even the schema
    result = invoke(db_url, "pivot-breakout", "--input", str(tmp_path / "bars.csv"), "--tz", "UTC", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["symbol"] == "INPUT" and out["metrics"]["bars"] == len(bars)
    run = stored_run(db_url, out["run_id"])
    assert run["data_start"] == bars.index[0]  # the stamps are UTC, as --tz said (not New York: no 5 h shift)
    assert counts(db_url) == (1, out["metrics"]["trades"])


def test_bars_from_a_fresh_database_are_one_line_and_exit_5(db_url: str, tmp_path) -> None:
    result = invoke(db_url, "pivot-breakout", "-s", "SPY")
    assert result.exit_code == 5, result.output
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "has no ibkrtool schema: run 'ibkrtool db init'" in result.stderr
    if db_url.startswith("sqlite"):
        assert not (tmp_path / "ibkrtool-test.db").exists()


def test_tables_go_to_stdout_unless_stdout_carries_data(sqlite_url: str) -> None:
    seed(sqlite_url)
    plain = invoke(sqlite_url, "ema-aroon", "-s", "SPY", "-s", "QQQ", "--no-store")
    assert plain.exit_code == 0, plain.output
    assert "Final equity" in plain.stdout and "combined" in plain.stdout and "Final equity" not in plain.stderr
    as_json = invoke(sqlite_url, "ema-aroon", "-s", "SPY", "--no-store", "--json")
    assert as_json.exit_code == 0 and json.loads(as_json.stdout)["symbol"] == "SPY"
    assert "Final equity" in as_json.stderr
    as_csv = invoke(sqlite_url, "ema-aroon", "-s", "SPY", "-s", "QQQ", "--no-store", "--trades", "-")
    assert as_csv.exit_code == 0, as_csv.output
    trades = pd.read_csv(io.StringIO(as_csv.stdout))
    assert set(trades["symbol"]) == {"SPY", "QQQ"} and trades["entry_time"].str.endswith("Z").all()
    assert "Final equity" in as_csv.stderr and "combined" in as_csv.stderr


def test_the_chart_window_options_are_plot_start_and_plot_end(sqlite_url: str, tmp_path) -> None:
    seed(sqlite_url)
    old = invoke(sqlite_url, "pivot-breakout", "-s", "SPY", "--plot", str(tmp_path / "c.png"), "--from", "2024-04-01")
    assert old.exit_code == 2 and "No such option" in old.stderr
    empty = invoke(sqlite_url, "pivot-breakout", "-s", "SPY", "--plot", str(tmp_path / "c.png"),
                   "--plot-start", "2024-05-01")
    assert empty.exit_code == 3 and "widen --plot-start/--plot-end" in empty.stderr
    assert counts(sqlite_url) == (0, 0)  # the chart is drawn before the run is stored


def test_help_paragraphs_are_not_hand_wrapped() -> None:
    wide = CliRunner().invoke(app, ["backtest", "--help"], env={"COLUMNS": "1000"})
    assert wide.exit_code == 0
    assert any("filled at the NEXT bar's open (--fill next-open, default) or at that close (--fill close)." in line
               for line in wide.output.splitlines())
    narrow = CliRunner().invoke(app, ["backtest", "--help"], env={"COLUMNS": "80"})
    lines = narrow.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    from ibkrtool.cli.backtest import HELP

    examples = [line.strip() for line in HELP.splitlines() if line.strip().startswith("ibkrtool ")]
    assert len(examples) >= 3 and all(any(line.strip() == ex for line in lines) for ex in examples)
    paragraphs = HELP.split("\n\n")[:-1]  # all but the examples: one line each
    assert all("\n" not in p.strip() for p in paragraphs)


def test_the_command_module_imports_no_heavy_library() -> None:
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import ibkrtool.cli.backtest"],
                          capture_output=True, text=True, check=True)
    heavy = [line for line in done.stderr.splitlines() if re.search(r"\b(pandas|matplotlib|sqlalchemy)\b", line)]
    assert heavy == []
