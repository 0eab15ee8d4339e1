"""Orders you can trust: "once, even when run twice at once". Two real ``ibkrtool execute --paper`` processes for the
same run, account and instrument, started together with different client ids (as the Airflow DAG gives each task),
on one database (SQLite and PostgreSQL): IB ends with exactly one order per intent — one order in all by default.
Orders are counted from the sim's own order log; no sleeps."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ibkrtool.store.engine import open_engine
from ibkrtool.store.migrate import init_db
from tests.execution.test_execute_identity import sim_orders
from tests.execution.test_execute_now import WEEK_OLD
from tests.execution.test_execute_simulate import POSITIONS

pytestmark = pytest.mark.timeout(120)
REPLAY = ("--replay", "--max-signal-age", "1000d")  # POSITIONS are of 2024-03-04


def execute_twice(gateway: Any, url: str, *args: str) -> list[subprocess.CompletedProcess]:
    """Start two ``ibkrtool execute`` processes at once (client ids 11 and 12) and wait for both."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IBKRTOOL_")}
    procs = [subprocess.Popen([sys.executable, "-m", "ibkrtool", "--db", url, "--ib-port", str(gateway.port),
                               "--client-id", str(client_id), "execute", *args], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for client_id in (11, 12)]
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=90)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def prepared(url: str) -> str:
    engine = open_engine(url)
    init_db(engine)  # the pipeline's db init; the test is about orders, not two first migrations racing
    engine.dispose()
    return url


def trial_file(folder: Path, text: str, trial: int) -> str:
    """``text`` with a ``trial`` column: the same targets, another run (run ids hash the content)."""
    lines = text.splitlines()
    path = folder / f"positions-{trial}.csv"
    path.write_text("\n".join([lines[0] + ",trial", *(f"{line},{trial}" for line in lines[1:])]) + "\n")
    return str(path)


@pytest.mark.parametrize("trial", range(3))
def test_two_default_runs_at_once_send_one_order(sim_factory, db_url, tmp_path: Path, trial: int) -> None:
    """Before: with --latest, 1 of 6 trials doubled the position to 200. Now: one order; the other process waits
    for the lock, then sees the position at the target (and the order's key executed) and sends nothing."""
    gateway = sim_factory()
    path = trial_file(tmp_path, WEEK_OLD, trial)
    runs = execute_twice(gateway, prepared(db_url), "--positions", path, "-s", "QQQ", "-n", "100", "--paper")
    assert [r.returncode for r in runs] == [0, 0], [r.stderr for r in runs]
    assert [(s, a, q) for s, a, q, _ in sim_orders(gateway)] == [("QQQ", "BUY", 100)]


@pytest.mark.parametrize("trial", range(3))
def test_two_replays_at_once_send_each_intent_once(sim_factory, db_url, tmp_path: Path, trial: int) -> None:
    """Before: 26–27 orders for 14 intents, one run ending short on a long-only strategy. Now: one per intent."""
    gateway = sim_factory()
    path = trial_file(tmp_path, POSITIONS, trial)
    runs = execute_twice(gateway, prepared(db_url), "--positions", path, "-s", "SPY", "-n", "100", "--paper",
                         *REPLAY)
    assert [r.returncode for r in runs] == [0, 0], [r.stderr for r in runs]
    orders = sim_orders(gateway)
    assert [(a, q) for _, a, q, _ in orders] == [("BUY", 100), ("SELL", 200), ("BUY", 100)]
    assert len({ref for *_, ref in orders}) == 3
    assert sum(r.stderr.count(": already placed") for r in runs) == 3  # the second process placed none of them
