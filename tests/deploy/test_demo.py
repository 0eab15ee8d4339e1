"""scripts/demo.sh (`make run`): the whole pipeline on the sim, on SQLite and PostgreSQL; the sim stops on failure.

One session instead of the demo's five keeps these tests quick (DEMO_SESSIONS=1); `make run` itself is timed by hand
(see the README's figures).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
OUTPUTS = ["spy_positions.csv", "eurusd_positions.csv", "spy_strategy_trades.csv", "eurusd_strategy_trades.csv",
           "spy_backtest_trades.csv", "eurusd_backtest_trades.csv", "spy_equity.csv", "eurusd_equity.csv",
           "strategy_chart.png"]


def _run_demo(tmp_path: Path, venv: Path, db_url: str = "", path_first: Path | None = None,
              ) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IBKRTOOL_")}
    env.update(VENV=str(venv), DEMO_DIR=str(tmp_path / "demo"), DEMO_SESSIONS="1", COLUMNS="200")
    if path_first:
        env["PATH"] = f"{path_first}{os.pathsep}{env['PATH']}"
    return subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh"), db_url], env=env, capture_output=True,
                          text=True, timeout=600)


def _sim_pid(stderr: str) -> int:
    found = re.search(r"sim pid (\d+) listening on 127\.0\.0\.1:(\d+)", stderr)
    assert found, stderr[-2000:]
    return int(found[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too; the demo's shell has exited, so it is reaped by init soon after.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def _check_success(run: subprocess.CompletedProcess, out: Path) -> None:
    assert run.returncode == 0, run.stderr[-3000:]
    for name in OUTPUTS:
        assert (out / name).stat().st_size > 0, name
    assert "Demo finished in" in run.stderr and "strategy_chart.png" in run.stderr
    assert not _alive(_sim_pid(run.stderr))  # the sim is stopped on the way out
    assert "0 pacing violations" in (out / "sim.log").read_text()


@pytest.mark.sim
@pytest.mark.slow
def test_demo_runs_the_whole_pipeline_on_sqlite(tmp_path: Path) -> None:
    run = _run_demo(tmp_path, BIN.parent)
    _check_success(run, tmp_path / "demo")
    assert (tmp_path / "demo" / "ibkrtool.db").stat().st_size > 0
    for step in ("db init", "account-summary", "backfill SPY 1-second bars", "backfill EUR.USD 5-minute midpoint",
                 "resample SPY 1s -> 5m", "strategy pivot-breakout", "strategy ema-aroon", "backtest pivot-breakout",
                 "execute --paper"):
        assert step in run.stderr, step
    has_execute = subprocess.run([str(BIN / "ibkrtool"), "execute", "--help"], capture_output=True).returncode == 0
    assert (tmp_path / "demo" / "eurusd_execution_log.csv").exists() == has_execute


@pytest.mark.sim
@pytest.mark.pg
@pytest.mark.slow
def test_demo_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    run = _run_demo(tmp_path, BIN.parent, pg_url)
    _check_success(run, tmp_path / "demo")
    assert not (tmp_path / "demo" / "ibkrtool.db").exists()
    assert f"database          {pg_url}" in run.stderr  # the fixture's URL has no password to hide


@pytest.mark.sim
@pytest.mark.slow
def test_without_r_it_says_so_and_a_failing_step_stops_the_sim(tmp_path: Path) -> None:
    # A venv whose ibkrtool refuses `backtest` (exit 5) and is the real one otherwise; an Rscript without TTR first
    # on PATH.
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec "{BIN / "python"}" "$@"\n')
    fake = venv / "bin" / "ibkrtool"
    fake.write_text(f'#!/usr/bin/env bash\n[ "$1" = backtest ] && {{ echo "database locked" >&2; exit 5; }}\n'
                    f'exec "{BIN / "ibkrtool"}" "$@"\n')
    no_ttr = tmp_path / "no-ttr"
    no_ttr.mkdir()
    (no_ttr / "Rscript").write_text("#!/bin/sh\necho 'there is no package called TTR' >&2\nexit 1\n")
    for script in (python, fake, no_ttr / "Rscript"):
        script.chmod(0o755)
    run = _run_demo(tmp_path, venv, path_first=no_ttr)
    assert "note: Rscript with the TTR package was not found, so the Python engine runs ema-aroon" in run.stderr
    assert "strategy ema-aroon on EUR.USD 5m (python engine)" in run.stderr
    assert (tmp_path / "demo" / "eurusd_positions.csv").stat().st_size > 0
    assert run.returncode == 5
    assert "demo failed (exit 5) at step: backtest pivot-breakout" in run.stderr
    assert not _alive(_sim_pid(run.stderr))
    assert "sim stopped" in (tmp_path / "demo" / "sim.log").read_text()
