"""``ibkrtool strategy``: store and CSV in, positions/trades out, both engines, one-line errors with exit 3."""

from __future__ import annotations

import io
import stat

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ibkrtool.cli.main import app
from ibkrtool.model.contract import Contract
from ibkrtool.store.bars import write_bars
from ibkrtool.store.contracts import upsert_contract
from ibkrtool.store.csvio import write_bars_csv
from ibkrtool.store.engine import open_engine
from ibkrtool.store.migrate import init_db
from ibkrtool.store.strategy_runs import load_strategy_run
from ibkrtool.store.tables import strategy_runs
from ibkrtool.strategies import get_strategy, parse_params
from tests.strategies.conftest import make_bars

SPY = Contract(conid=756733, symbol="SPY", exchange="SMART", primary_exchange="ARCA", local_symbol="SPY")


def invoke(*args: str, stdin: str | None = None, env: dict | None = None):
    return CliRunner().invoke(app, list(args), input=stdin, env=env)


@pytest.fixture
def bars_csv(tmp_path):
    path = tmp_path / "bars.csv"
    write_bars_csv(make_bars(3000), path)
    return path


def test_list_shows_parameters_and_defaults():
    result = invoke("strategy", "--list")
    assert result.exit_code == 0, result.output
    for text in ("pivot-breakout", "ma_period=50", "ema-aroon", "allow_short=false"):
        assert text in result.stdout


def test_store_in_store_out_with_csv_and_trades(db_url, tmp_path):
    engine = open_engine(db_url)
    init_db(engine)
    upsert_contract(engine, SPY)
    bars = make_bars(3000)
    write_bars(engine, SPY.conid, "5m", "TRADES", bars)
    out, trades = tmp_path / "pos.csv", tmp_path / "trades.csv"
    result = invoke("--db", db_url, "strategy", "pivot-breakout", "--symbol", "SPY", "--bar-size", "5m",
                    "--param", "pivot=3", "-o", str(out), "--trades", str(trades))
    assert result.exit_code == 0, result.output
    strat = get_strategy("pivot-breakout")
    want = strat.run(bars, parse_params(strat, {"pivot": "3"}))
    csv = pd.read_csv(out)
    assert list(csv.columns[:4]) == ["ts", "close", "position", "signal"] and "swing_low" in csv.columns
    np.testing.assert_array_equal(csv["position"], want.positions)
    with engine.connect() as conn:
        (run_id,) = conn.execute(strategy_runs.select().with_only_columns(strategy_runs.c.run_id)).scalars()
    run, positions = load_strategy_run(engine, run_id)
    assert run["strategy"] == "pivot-breakout" and run["params"]["pivot"] == 3 and run["conid"] == SPY.conid
    assert run["data_start"] == bars.index[0] and run["data_end"] == bars.index[-1]
    np.testing.assert_array_equal(positions["position"], want.positions)
    assert positions["signal"].dropna().tolist() == [s for s in want.signals if s]
    assert len(pd.read_csv(trades)) == (np.diff(np.r_[0, want.positions]) == 1).sum()
    assert run_id in result.stdout  # the summary table: stdout, which carries no data here


def test_csv_stdin_to_stdout_without_the_database(bars_csv, tmp_path):
    result = invoke("--db", f"sqlite:///{tmp_path / 'unused.db'}", "strategy", "ema-aroon", "--input", "-",
                    "-o", "-", stdin=bars_csv.read_text())
    assert result.exit_code == 0, result.output
    got = pd.read_csv(io.StringIO(result.stdout))
    want = get_strategy("ema-aroon").run(make_bars(3000))
    np.testing.assert_array_equal(got["position"], want.positions)
    np.testing.assert_array_equal(got["aroon_up"], want.indicators["aroon_up"])
    assert not (tmp_path / "unused.db").exists()


@pytest.mark.parametrize(
    ("mutate", "args", "message"),
    [
        (lambda b: b.drop(columns="close"), [], "close"),
        (lambda b: b, ["--param", "pivot=x"], "not a valid int"),
        (lambda b: b, ["--param", "nope=1"], "no parameter 'nope'"),
        (lambda b: b.iloc[:30], [], "needs at least 50 bars"),
        (lambda b: b.assign(high=np.where(np.arange(len(b)) == 9, np.nan, b.high)), [], "'high' is empty"),
    ],
)
def test_bad_input_is_one_line_exit_3_and_writes_nothing(tmp_path, mutate, args, message):
    source, out = tmp_path / "in.csv", tmp_path / "out.csv"
    frame = mutate(make_bars(300))
    ts = frame.index.strftime("%Y-%m-%dT%H:%M:%SZ")
    frame.assign(ts=ts).to_csv(source, index=False)
    result = invoke("strategy", "pivot-breakout", "--input", str(source), "-o", str(out), *args)
    assert result.exit_code == 3, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_unsorted_and_unknown_strategy_exit_3(tmp_path):
    source = tmp_path / "in.csv"
    bars = make_bars(300)
    bars.assign(ts=bars.index.strftime("%Y-%m-%dT%H:%M:%SZ")).iloc[::-1].to_csv(source, index=False)
    assert invoke("strategy", "pivot-breakout", "--input", str(source)).exit_code == 3
    result = invoke("strategy", "no-such", "--input", str(source))
    assert result.exit_code == 3 and "unknown strategy 'no-such'" in result.stderr


@pytest.mark.r
@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("ema-aroon", {}),
        ("ema-aroon", {"allow_short": "true", "ema_fast": "8", "ema_slow": "21", "aroon_n": "14"}),
        ("pivot-breakout", {}),
        ("pivot-breakout", {"pivot": "3", "ma_type": "ema", "ma_period": "20"}),
    ],
)
def test_python_and_r_engines_agree(rscript, name, params):
    from ibkrtool.strategies.output import run_engine

    strat = get_strategy(name)
    p = parse_params(strat, params)
    if name == "ema-aroon":  # forex-like prices on a coarse grid: flat stretches make the EMAs meet (knife edges)
        bars = make_bars(4000, seed=11, step=0.0004, start=1.08, freq="1min")
    else:  # stock-like prices on a cent grid: equal highs/lows test the strict pivot rule
        bars = make_bars(4000, seed=11, step=0.05)
    py, r = run_engine(strat, bars, p, "python"), run_engine(strat, bars, p, "r")
    assert (py.positions != 0).sum() > 100
    np.testing.assert_array_equal(r.positions, py.positions)
    assert r.signals.tolist() == py.signals.tolist()
    np.testing.assert_allclose(r.indicators.to_numpy(), py.indicators.to_numpy(), rtol=0, atol=1e-9)
    assert list(r.indicators.columns) == list(py.indicators.columns)


@pytest.mark.r
def test_cli_r_engine_output_matches_python(rscript, bars_csv):
    py = invoke("strategy", "ema-aroon", "--input", str(bars_csv), "-o", "-")
    r = invoke("strategy", "ema-aroon", "--input", str(bars_csv), "-o", "-", "--engine", "r")
    assert py.exit_code == 0 and r.exit_code == 0, r.output
    a, b = pd.read_csv(io.StringIO(py.stdout)), pd.read_csv(io.StringIO(r.stdout))
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=0, atol=1e-9)


def fake_rscript(tmp_path, body: str) -> str:
    path = tmp_path / "Rscript"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_missing_rscript_says_how_to_install(bars_csv, tmp_path):
    result = invoke("strategy", "ema-aroon", "--input", str(bars_csv), "--engine", "r",
                    env={"IBKRTOOL_RSCRIPT": str(tmp_path / "no-such-Rscript")})
    assert result.exit_code == 3
    assert "apt-get install r-base-core r-cran-ttr" in result.stderr and 'install.packages("TTR")' in result.stderr


def test_missing_ttr_says_how_to_install(bars_csv, tmp_path):
    rs = fake_rscript(tmp_path, "echo \"Error in library(TTR) : there is no package called 'TTR'\" >&2; exit 1")
    result = invoke("strategy", "ema-aroon", "--input", str(bars_csv), "--engine", "r", env={"IBKRTOOL_RSCRIPT": rs})
    assert result.exit_code == 3 and "TTR is not installed" in result.stderr


def test_r_failure_shows_rs_stderr(bars_csv, tmp_path):
    rs = fake_rscript(tmp_path, "echo 'some R trace line' >&2; echo 'Error: boom' >&2; exit 1")
    result = invoke("strategy", "ema-aroon", "--input", str(bars_csv), "--engine", "r", env={"IBKRTOOL_RSCRIPT": rs})
    assert result.exit_code == 1
    assert "some R trace line" in result.stderr and "Error: boom" in result.stderr


def test_rscript_never_sees_the_database_url(bars_csv, tmp_path):
    """R reads bars from a file: it needs none of ibkrtool's settings, and the database URL may hold a password."""
    dump = tmp_path / "r-env.txt"
    rs = fake_rscript(tmp_path, f"env > {dump}; exit 1")
    secret = "postgresql://trader:s3cr3t-pw@db.internal/market"
    invoke("strategy", "ema-aroon", "--input", str(bars_csv), "--engine", "r",
           env={"IBKRTOOL_RSCRIPT": rs, "IBKRTOOL_DB_URL": secret})
    seen = dump.read_text()
    assert "PATH=" in seen and "s3cr3t-pw" not in seen and "IBKRTOOL_" not in seen
