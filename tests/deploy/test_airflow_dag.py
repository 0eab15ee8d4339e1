"""dags/ibkr_pipeline_dag.py under real Airflow: DagBag loads it, and `airflow dags test` runs it against the sim.

Runs in its own venv (`make test-airflow` builds .venv-airflow with Airflow and ibkrtool); the main .venv has no
Airflow, so there this file skips.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

if importlib.util.find_spec("airflow") is None:
    pytest.skip("Airflow is not installed in this venv: run `make test-airflow` (builds .venv-airflow)",
                allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
# Airflow reads its configuration when first imported: point it at a throwaway home before that.
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="ibkrtool-airflow-"))
AIRFLOW_ENV = {"AIRFLOW_HOME": str(AIRFLOW_HOME), "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
               "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__UNIT_TEST_MODE": "False"}
os.environ.update(AIRFLOW_ENV)

from airflow.dag_processing.dagbag import DagBag  # noqa: E402

STEPS = ["backfill", "resample", "strategy", "backtest", "execute"]
RUN_TIMEOUT_S = 600


def _load_demo_clock() -> Any:
    spec = importlib.util.spec_from_file_location("demo_clock", ROOT / "scripts" / "demo_clock.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module", autouse=True)
def _airflow_home() -> Iterator[None]:
    yield
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="module")
def dag() -> Any:
    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    assert list(bag.dags) == ["ibkr_pipeline"]
    return bag.dags["ibkr_pipeline"]


def test_dagbag_loads_without_import_errors(dag: Any) -> None:
    assert dag.catchup is False and dag.max_active_runs == 1
    assert "ibkrtool" in dag.tags


def test_one_mapped_chain_per_symbol(dag: Any) -> None:
    ids = {t.task_id for t in dag.tasks}
    assert ids == {"symbols", *(f"pipeline.{s}" for s in STEPS)}
    for before, after in itertools.pairwise(STEPS):
        assert dag.get_task(f"pipeline.{before}").downstream_task_ids == {f"pipeline.{after}"}
    for step in STEPS:
        task = dag.get_task(f"pipeline.{step}")
        assert type(task).__name__ == "BashOperator"
        assert "symbols" in task.upstream_task_ids  # each step is mapped over the symbols task's output
    assert dag.get_task("pipeline.execute").retries == 0  # orders are never resent by a retry


def test_every_step_is_one_ibkrtool_call(dag: Any) -> None:
    for step in STEPS:
        command = dag.get_task(f"pipeline.{step}").bash_command
        assert f'"$IBKRTOOL" {step}' in command


def test_configuration_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    module = sys.modules[next(m for m in sys.modules if m.endswith("ibkr_pipeline_dag"))]
    monkeypatch.setenv("IBKRTOOL_SYMBOLS", '["AAPL@NASDAQ", "EUR.USD", "AAPL@NASDAQ"]')
    monkeypatch.setenv("IBKRTOOL_BAR_SIZE", '{"EUR.USD": "1m"}')
    monkeypatch.setenv("IBKRTOOL_DB_URL", "sqlite:///x.db")
    assert module.parse_symbols(module.setting("symbols")) == ["AAPL@NASDAQ", "EUR.USD"]
    env = module.symbol_env("EUR.USD")
    assert env["BAR_SIZE"] == "1m" and env["IBKRTOOL_DB_URL"] == "sqlite:///x.db" and env["SYMBOL"] == "EUR.USD"
    assert module.symbol_env("AAPL@NASDAQ")["BAR_SIZE"] == "1m"
    assert (env["QUANTITY"], module.symbol_env("AAPL@NASDAQ")["QUANTITY"]) == ("25000", "100")
    # One IB client id per symbol: their chains run in parallel, and IB refuses a second connection with one id.
    monkeypatch.setenv("IBKRTOOL_CLIENT_ID", "40")
    assert [module.symbol_env(s, i)["IBKRTOOL_CLIENT_ID"] for i, s in enumerate(["SPY", "EUR.USD"])] == ["40", "41"]
    assert module.parse_symbols("SPY, EUR.USD") == ["SPY", "EUR.USD"]


@pytest.mark.sim
@pytest.mark.r
@pytest.mark.slow
def test_airflow_dags_test_runs_the_pipeline_on_the_sim(tmp_path: Path, sim_factory: Callable[..., Any],
                                                        rscript: str) -> None:
    clock = _load_demo_clock()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    first, last = clock.last_sessions(now, 1)
    gateway = sim_factory(start=clock.sim_start(now), pacing_scale=0.01)
    db_file, out = tmp_path / "ibkrtool.db", tmp_path / "out"
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("IBKRTOOL_")}
    env.update(AIRFLOW_ENV, PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", COLUMNS="200",
               IBKRTOOL_DB_URL=f"sqlite:///{db_file}", IBKRTOOL_IB_PORT=str(gateway.port),
               IBKRTOOL_BIN=str(bin_dir / "ibkrtool"), IBKRTOOL_PACING_SCALE="0.01", IBKRTOOL_SYMBOLS="SPY,EUR.USD",
               IBKRTOOL_BACKFILL_START=first, IBKRTOOL_BACKFILL_END=last, IBKRTOOL_OUT_DIR=str(out))
    airflow = str(bin_dir / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=RUN_TIMEOUT_S)
    run = subprocess.run([airflow, "dags", "test", "ibkr_pipeline"], env=env, capture_output=True, text=True,
                         timeout=RUN_TIMEOUT_S)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    with sqlite3.connect(AIRFLOW_HOME / "airflow.db") as meta:
        states = dict(((t, i), s) for t, i, s in meta.execute("SELECT task_id, map_index, state FROM task_instance"))
        run_states = [s for (s,) in meta.execute("SELECT state FROM dag_run WHERE dag_id = 'ibkr_pipeline'")]
    assert run_states == ["success"]
    assert states.pop(("symbols", -1)) == "success"
    has_execute = subprocess.run([env["IBKRTOOL_BIN"], "execute", "--help"], capture_output=True).returncode == 0
    for index in (0, 1):  # SPY, EUR.USD
        for step in STEPS[:-1]:
            assert states.pop((f"pipeline.{step}", index)) == "success"
        assert states.pop(("pipeline.execute", index)) == ("success" if has_execute else "skipped")
    assert states == {}

    with sqlite3.connect(db_file) as data:
        series = {(s, b): n for s, b, n in data.execute("SELECT c.local_symbol, b.bar_size, COUNT(*) FROM bars b "
                                                       "JOIN contracts c USING (conid) GROUP BY 1, 2")}
        engines = set(data.execute("SELECT symbol, engine FROM strategy_runs"))
    assert series[("SPY", "1s")] > 10_000 and series[("SPY", "5m")] >= 78  # one session: 23,400 s, 78 bins
    assert series[("EUR.USD", "5m")] == 288  # one forex session, 24 h
    assert engines == {("SPY", "r"), ("EUR.USD", "r")}
    for symbol in ("SPY", "EUR.USD"):
        for name in ("positions.csv", "strategy_trades.csv", "backtest_trades.csv", "equity.csv", "chart.png"):
            assert (out / symbol / name).stat().st_size > 0
        assert (out / symbol / "execution_log.csv").exists() == has_execute
    assert gateway.violations == 0  # the backfill kept to IB's pacing rules


def test_a_missing_or_relative_sqlite_database_is_refused() -> None:
    module = sys.modules[next(m for m in sys.modules if m.endswith("ibkr_pipeline_dag"))]
    for url in ("", "sqlite:///ibkrtool.db"):
        with pytest.raises(ValueError, match="absolute"):
            module.check_db_url(url)
    assert module.check_db_url("sqlite:////var/lib/ibkrtool.db") == "sqlite:////var/lib/ibkrtool.db"
    assert module.check_db_url("postgresql://u@h/db") == "postgresql://u@h/db"
