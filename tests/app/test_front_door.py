"""What users hit one step beside the path: fresh databases, zone-less times, several symbols, the run journal.

Each test reproduces a behaviour of issue "One front door" that was wrong before the application layer.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from ibkrtool.cli.main import app
from ibkrtool.store import tables as t
from ibkrtool.store.csvio import read_bars_csv
from ibkrtool.store.engine import open_engine
from tests.strategies.conftest import make_bars

Invoke = Callable[..., Result]
FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "spy_1s.csv"


def _invoke(db: str) -> Invoke:
    runner = CliRunner()

    def invoke(*args: str, stdin: str | None = None) -> Result:
        return runner.invoke(app, ["--db", db, *args], input=stdin)

    return invoke


def _runs(db: str) -> list:
    engine = open_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.runs)).all()
    engine.dispose()
    return rows


def _bars_csv(path: Path, n: int = 600, naive_zone: str | None = None) -> Path:
    bars = make_bars(n)
    frame = bars.reset_index()
    if naive_zone is not None:
        frame["ts"] = frame["ts"].dt.tz_convert(naive_zone).dt.strftime("%Y-%m-%d %H:%M:%S")
    else:
        frame["ts"] = frame["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    frame.to_csv(path, index=False)
    return path


def test_resample_from_csv_into_a_fresh_database_initialises_it(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = _invoke(db)("resample", "--input", str(FIXTURE), "--to", "1m", "-s", "SPY")
    assert result.exit_code == 0, result.output
    assert [(r.command, r.status) for r in _runs(db)] == [("resample", "ok")]


def test_strategy_store_on_a_fresh_database_works(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'fresh.db'}"
    source = _bars_csv(tmp_path / "bars.csv")
    result = _invoke(db)("strategy", "pivot-breakout", "--input", str(source), "-s", "SPY", "--store", "--json")
    assert result.exit_code == 0, result.output
    (run,) = json.loads(result.stdout)["runs"]
    assert run["run_id"].startswith("st-") and run["bars"] == 600
    engine = open_engine(db)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.strategy_positions)).scalar_one() == 600
    engine.dispose()


def test_a_reader_of_a_fresh_database_gets_one_line_and_exit_5_and_no_file(tmp_path: Path) -> None:
    path = tmp_path / "never.db"
    result = _invoke(f"sqlite:///{path}")("db", "status")
    assert result.exit_code == 5
    assert "has no ibkrtool schema: run 'ibkrtool db init'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not path.exists()


def test_a_missing_sqlite_folder_is_refused_and_only_db_init_creates_it(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "dir" / "x.db"
    invoke = _invoke(f"sqlite:///{path}")
    for args in (("db", "status"), ("resample", "--input", str(FIXTURE), "--to", "1m", "-s", "SPY")):
        result = invoke(*args)
        assert result.exit_code == 5, result.output
        assert "does not exist" in result.stderr
        assert not path.parent.exists()
    assert invoke("db", "init").exit_code == 0
    status = invoke("db", "status", "--json")
    assert status.exit_code == 0
    assert json.loads(status.stdout)["database"] == f"sqlite:///{path.resolve()}"


def test_zone_less_csv_times_are_refused_unless_tz_names_their_zone(tmp_path: Path) -> None:
    invoke = _invoke(f"sqlite:///{tmp_path / 'db.sqlite'}")
    naive = _bars_csv(tmp_path / "naive.csv", naive_zone="America/New_York")
    zoned = _bars_csv(tmp_path / "zoned.csv")
    for command in (["strategy", "pivot-breakout", "--no-store"], ["resample", "--to", "15m", "-s", "SPY"],
                    ["backtest", "pivot-breakout", "--no-store"]):
        refused = invoke(*command, "--input", str(naive), "-o" if command[0] != "backtest" else "--json",
                         *(["-"] if command[0] != "backtest" else []))
        assert refused.exit_code == 3, (command, refused.output)
        assert "--tz" in refused.stderr
    read = invoke("strategy", "pivot-breakout", "--no-store", "--input", str(naive), "--tz", "America/New_York",
                  "-o", "-")
    want = invoke("strategy", "pivot-breakout", "--no-store", "--input", str(zoned), "-o", "-")
    assert read.exit_code == 0 and want.exit_code == 0
    assert read.stdout == want.stdout  # same instants: no five-hour shift


def test_naive_start_is_refused_the_same_way_in_every_command(tmp_path: Path) -> None:
    invoke = _invoke(f"sqlite:///{tmp_path / 'db.sqlite'}")
    source = _bars_csv(tmp_path / "bars.csv")
    for command in (["strategy", "pivot-breakout", "--no-store", "--input", str(source)],
                    ["resample", "--to", "15m", "--input", str(source), "-o", "-"],
                    ["db", "export", "bars", "-s", "SPY", "-b", "5m"]):
        result = invoke(*command, "--start", "2026-03-02T09:30")
        assert result.exit_code == 3, (command, result.output)
        assert "has no time zone" in result.stderr
    ok = invoke("strategy", "pivot-breakout", "--no-store", "--input", str(source), "--start", "2026-03-02T09:30",
                "--tz", "America/New_York", "--json")
    assert ok.exit_code == 0, ok.output


@pytest.fixture
def two_symbols(tmp_path: Path) -> Invoke:
    invoke = _invoke(f"sqlite:///{tmp_path / 'two.db'}")
    assert invoke("db", "init").exit_code == 0
    for symbol, seed in (("SPY", 3), ("QQQ", 4)):
        path = tmp_path / f"{symbol}.csv"
        frame = make_bars(600, seed=seed).reset_index()
        frame["ts"] = frame["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        frame.to_csv(path, index=False)
        assert invoke("db", "import", "bars", str(path), "-s", symbol, "-b", "5m").exit_code == 0
    return invoke


def test_strategy_runs_every_symbol_given(two_symbols: Invoke) -> None:
    result = two_symbols("strategy", "pivot-breakout", "-s", "SPY", "-s", "QQQ", "-b", "5m", "--json")
    assert result.exit_code == 0, result.output
    assert [r["symbol"] for r in json.loads(result.stdout)["runs"]] == ["SPY", "QQQ"]


def test_a_failing_symbol_fails_the_command_but_keeps_the_others(two_symbols: Invoke, tmp_path: Path) -> None:
    result = two_symbols("strategy", "pivot-breakout", "-s", "SPY", "-s", "ZZZZ", "-b", "5m", "--json")
    assert result.exit_code == 3
    body = json.loads(result.stdout)
    assert [r["symbol"] for r in body["runs"]] == ["SPY"] and body["runs"][0]["run_id"]
    assert [f["symbol"] for f in body["failures"]] == ["ZZZZ"]
    assert "1 of 2 symbols failed" in result.stderr and "ZZZZ" in result.stderr
    resampled = two_symbols("resample", "-s", "SPY", "-s", "QQQ", "-b", "5m", "--to", "15m", "--json")
    assert resampled.exit_code == 0, resampled.output
    assert [s["symbol"] for s in json.loads(resampled.stdout)["series"]] == ["SPY", "QQQ"]


def test_a_single_symbol_option_refuses_a_second(two_symbols: Invoke) -> None:
    result = two_symbols("db", "export", "bars", "-s", "SPY", "-s", "QQQ", "-b", "5m")
    assert result.exit_code == 3 and "takes one --symbol" in result.stderr


def test_db_export_end_date_is_an_inclusive_trading_day(two_symbols: Invoke) -> None:
    # make_bars starts 2026-03-02 14:30Z, 5-minute bars: 600 bars span 2026-03-02 .. 2026-03-04 (UTC).
    day = two_symbols("db", "export", "bars", "-s", "SPY", "-b", "5m", "--start", "2026-03-03", "--end",
                      "2026-03-03", "-o", "-")
    assert day.exit_code == 0, day.output
    stamps = read_bars_csv(pd.io.common.StringIO(day.stdout)).index.tz_convert("America/New_York")
    assert len(stamps) == 288 and {s.date().isoformat() for s in stamps} == {"2026-03-03"}


def test_a_killed_command_leaves_its_run_abandoned_not_running(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'kill.db'}"
    assert _invoke(db)("db", "init").exit_code == 0
    code = ("import os, signal, sys\nfrom ibkrtool.app.workspace import Workspace\n"
            "from ibkrtool.settings import Settings\n"
            f"ws = Workspace(Settings(db_url={db!r}))\n"
            "with ws.journal('backfill', {}):\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    child = subprocess.run([sys.executable, "-c", code], env={**os.environ}, timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert [r.status for r in _runs(db) if r.command == "backfill"] == ["running"]
    assert _invoke(db)("db", "init").exit_code == 0
    (killed,) = [r for r in _runs(db) if r.command == "backfill"]
    assert killed.status == "abandoned" and killed.ended_at is not None and str(child.returncode) != killed.error


def test_positions_csv_carries_no_float_noise() -> None:
    import io

    from ibkrtool.strategies.output import write_positions_csv

    index = pd.date_range("2026-03-02 14:30", periods=2, freq="5min", tz="UTC")
    frame = pd.DataFrame({"close": [470.01, 470.02], "position": [0.0, 1.0], "signal": [None, "entry"],
                          "aroon_osc": [-78.00000000000864, 12.5]}, index=index)
    out = io.StringIO()
    write_positions_csv(frame, out)
    assert out.getvalue().splitlines()[1:] == ["2026-03-02T14:30:00Z,470.01,0,,-78",
                                               "2026-03-02T14:35:00Z,470.02,1,entry,12.5"]


def test_backtest_of_several_symbols_keeps_the_ones_with_bars(two_symbols: Invoke) -> None:
    result = two_symbols("backtest", "pivot-breakout", "-s", "SPY", "-s", "ZZZZ", "-s", "QQQ", "-b", "5m", "--json")
    assert result.exit_code == 3
    assert [run["symbol"] for run in json.loads(result.stdout)] == ["SPY", "QQQ"]
    assert "1 of 3 symbols failed" in result.stderr and "ZZZZ" in result.stderr
