"""The scripts the Compose services run, on real parts: postgres-init.sh on PostgreSQL, pipeline.sh on the sim."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.plugins.pg import _pg_bin, pg_engine

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _clean_env(*path_first: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IBKRTOOL_", "PG"))}
    env.update(PATH=os.pathsep.join([*map(str, path_first), str(BIN), env.get("PATH", "")]), COLUMNS="200", **extra)
    return env


def _ibkrtool(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "ibkrtool"), *args], env=env, capture_output=True, text=True, check=True,
                          timeout=300)


@pytest.mark.pg
def test_postgres_init_hook_applies_sql_and_records_the_version(pg_url: str) -> None:
    bindir = _pg_bin()
    psql = shutil.which("psql") or (str(bindir / "psql") if bindir else None)
    if psql is None:
        pytest.skip("psql not found")
    url = make_url(pg_url)
    env = _clean_env(Path(psql).parent, PGHOST=url.host, PGPORT=str(url.port), POSTGRES_USER=url.username,
                     POSTGRES_DB=url.database, IBKRTOOL_SQL_DIR=str(ROOT / "sql"))
    subprocess.run(["bash", str(ROOT / "deploy" / "postgres-init.sh")], env=env, check=True, capture_output=True,
                   timeout=120)
    engine = pg_engine(pg_url)
    with engine.connect() as conn:
        versions = conn.execute(text("SELECT version, name FROM ibkr_data.schema_version ORDER BY version")).all()
    engine.dispose()
    expected = sorted(p.name for p in (ROOT / "sql").glob("[0-9][0-9][0-9]_*.sql"))
    assert [f"{v:03d}_{n}.sql" for v, n in versions] == expected
    # ibkrtool then finds the schema current: db init applies nothing (it would fail re-creating the tables).
    ib_env = _clean_env(IBKRTOOL_DB_URL=pg_url)
    _ibkrtool(ib_env, "db", "init")
    status = json.loads(_ibkrtool(ib_env, "db", "status", "--json").stdout)
    assert status["schema_version"] == len(expected)


@pytest.mark.sim
@pytest.mark.r
@pytest.mark.slow
def test_pipeline_script_runs_end_to_end_on_the_sim(tmp_path: Path, sim_factory: Callable[..., Any],
                                                    rscript: str) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import demo_clock
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    now = datetime.now(timezone.utc).replace(microsecond=0)
    first, last = demo_clock.last_sessions(now, 1)
    gateway = sim_factory(start=demo_clock.sim_start(now))
    out = tmp_path / "out"
    env = _clean_env(IBKRTOOL_DB_URL=f"sqlite:///{tmp_path / 'db.sqlite'}", IBKRTOOL_IB_PORT=str(gateway.port),
                     SYMBOLS="SPY EUR.USD", BAR_SIZE="1m", TO="5m", STRATEGY="ema-aroon", ENGINE="r",
                     PACING_SCALE="0.01", START=first, END=last, OUT=str(out))
    run = subprocess.run(["bash", str(ROOT / "deploy" / "pipeline.sh")], env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    for symbol in ("SPY", "EUR.USD"):
        for name in ("positions.csv", "strategy_trades.csv", "backtest_trades.csv", "chart.png"):
            assert (out / f"{symbol}_{name}").stat().st_size > 0
    status = json.loads(_ibkrtool(env, "db", "status", "--json").stdout)
    assert status["schema_version"] >= 1
    assert gateway.violations == 0
