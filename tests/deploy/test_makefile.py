"""The Makefile: `make help` documents every target; each pipeline target is one ibkrtool call with real options."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent
REQUIRED = {"help", "install", "run", "test", "lint", "format", "bench", "clean", "sim", "backfill", "collect",
            "strategy", "backtest", "test-airflow", "validate-deploy"}

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _make(*args: str) -> subprocess.CompletedProcess:
    # -o install: use this venv as it is (never rebuild it from a test).
    env = {k: v for k, v in os.environ.items() if not k.startswith("IBKRTOOL_")}
    env["COLUMNS"] = "200"
    return subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "-o", "install", f"VENV={VENV}", *args],
                          env=env, capture_output=True, text=True, timeout=120)


def test_help_lists_every_target() -> None:
    listed = set(re.findall(r"^\s+(?:\x1b\[36m)?([a-z-]+)", _make("help").stdout, flags=re.M))
    declared = set(re.findall(r"^([a-z-]+):", (ROOT / "Makefile").read_text(), flags=re.M))
    assert listed >= REQUIRED
    assert listed == declared  # nothing undocumented


def test_targets_are_one_line_cli_calls_with_overridable_variables() -> None:
    dry = _make("-n", "backfill", "SYMBOL=AAPL@NASDAQ", "BAR_SIZE=5m", "START=2026-11-02", "DB=sqlite:///x.db")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.strip() == (f"IBKRTOOL_DB_URL='sqlite:///x.db' {VENV}/bin/ibkrtool backfill --symbol AAPL@NASDAQ "
                                  "--bar-size 5m --start '2026-11-02'  --pacing-scale 1.0")
    collect = _make("-n", "collect", "SYMBOLS=SPY EUR.USD", "DURATION=90s").stdout.strip()
    assert collect.endswith("ibkrtool collect --symbol SPY --symbol EUR.USD --duration 90s --pacing-scale 1.0")


@pytest.mark.parametrize("target", ["sim", "backfill", "collect", "resample", "strategy", "backtest", "status"])
def test_each_pipeline_target_calls_options_ibkrtool_has(target: str, tmp_path: Path) -> None:
    # `--help` appended: ibkrtool parses every option first (an unknown one fails) and then only prints its help.
    run = _make(target, "ARGS=--help", "START=2026-11-02", "END=2026-11-06", "SIM_START=2026-11-20T15:00:00Z",
                f"PLOT={tmp_path}/chart.png", f"DB=sqlite:///{tmp_path}/x.db")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "Usage: ibkrtool" in run.stdout


def test_the_demo_gets_the_database_url_in_its_environment_not_its_arguments() -> None:
    """A password in an argument is visible in `ps` for the whole demo; in the environment it is not."""
    dry = _make("-n", "run", "DB=postgresql://trader:s3cr3t@db/market")
    line = next(line for line in dry.stdout.splitlines() if "scripts/demo.sh" in line)
    after = line.split("scripts/demo.sh", 1)[1]
    assert "s3cr3t" not in after.split("#")[0] and "DEMO_DB_URL='postgresql://trader:s3cr3t@db/market'" in line
