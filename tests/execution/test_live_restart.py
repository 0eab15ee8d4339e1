"""``kill -9`` of ``ibkrtool live`` in the middle of a position, then a restart: no duplicate entry, the exit
still happens. Real processes, the real CLI, the sim at speed 300."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ibkrtool.store.engine import open_engine
from ibkrtool.store.executions import read_executions
from tests.execution.live_helpers import FAST, SPEED

pytestmark = pytest.mark.timeout(120)


def live_cmd(port: int, db_url: str, decisions: Path, duration: str) -> list[str]:
    params = [arg for k, v in FAST.items() for arg in ("-p", f"{k}={v}")]
    return [sys.executable, "-m", "ibkrtool", "--db", db_url, "--ib-port", str(port), "--client-id", "9", "live",
            "ema-aroon", "--symbol", "SPY", "--quantity", "10", *params, "--duration", duration,
            "--decisions", str(decisions)]


def rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open() as handle:
        return list(csv.DictReader(handle))


def wait_for(condition, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.02)  # polling a file another process writes; the assertion is on its content
    return condition()


def test_kill_9_mid_position_then_restart(sim_factory, sqlite_url, tmp_path):
    gw = sim_factory(speed=SPEED)
    decisions = tmp_path / "decisions.csv"
    first = subprocess.Popen(live_cmd(gw.port, sqlite_url, decisions, "60s"), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        held = wait_for(lambda: next((r for r in rows(decisions) if r["kind"] == "fill" and float(r["position"])),
                                     None), 40)
        assert held, "the first trader never held a position"
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    before = rows(decisions)
    refs_before = {r["order_ref"] for r in before if r["kind"] == "order"}
    held_position = float([r for r in before if r["kind"] == "fill"][-1]["position"])
    second = subprocess.run(live_cmd(gw.port, sqlite_url, decisions, "12s"), capture_output=True, text=True,
                            cwd=tmp_path, timeout=60)
    assert second.returncode == 0, second.stderr[-2000:]
    after = rows(decisions)[len(before):]
    reconcile = next(r for r in after if r["kind"] == "reconcile")
    assert float(reconcile["position"]) == held_position  # the restart sees what IB holds
    new_orders = [r for r in after if r["kind"] == "order"]
    assert not refs_before & {r["order_ref"] for r in new_orders}  # nothing placed twice
    first_signal = next(r for r in after if r["kind"] == "signal")
    if float(first_signal["target"]) == held_position:  # re-evaluating the bar it died on: no re-entry
        assert after[after.index(first_signal) + 1]["kind"] == "hold"
    exits = [r for r in after if r["kind"] == "fill"
             and (abs(float(r["position"])) < abs(held_position) or float(r["position"]) * held_position < 0)]
    assert exits, "the position held at the kill was never exited after the restart"
    stored = read_executions(open_engine(sqlite_url))
    perms: dict[str, set] = {}
    for f in stored:
        perms.setdefault(f["order_ref"], set()).add(f["perm_id"])
    assert all(len(p) == 1 for p in perms.values())  # one IB order per signal bar
