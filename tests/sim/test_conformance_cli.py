"""Conformance of ``ibkrtool sim`` as a process: serves ib_async, stops cleanly on SIGTERM with a summary."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest
from ib_async import IB, Stock

pytestmark = pytest.mark.timeout(60)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, proc: subprocess.Popen, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"sim did not listen on {port}: {proc.stderr.read() if proc.poll() is not None else ''}")


def _start(*args: str) -> tuple[int, subprocess.Popen]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ibkrtool", "sim", "--port", str(port), "--start",
                             "2026-11-20T15:00:00Z", "--pacing-scale", "0.01", *args],
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return port, proc


def test_cli_sim_serves_and_stops_on_sigterm():
    port, proc = _start("--account", "DU7654321")
    try:
        _wait_listening(port, proc)
        ib = IB()
        ib.connect("127.0.0.1", port, clientId=3, timeout=4)
        assert ib.managedAccounts() == ["DU7654321"]
        spy = Stock("SPY", "SMART", "USD")
        ib.qualifyContracts(spy)
        assert ib.reqHistoricalData(spy, "", "1800 S", "1 min", "TRADES", True, 2)
        ib.disconnect()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert out == ""  # stdout is data; the sim has none
    assert "reqHistoricalData" in err and "sim stopped:" in err and "pacing violations" in err


def test_cli_sim_refuses_bad_options():
    from typer.testing import CliRunner

    from ibkrtool.cli.main import app

    runner = CliRunner()
    for args, flag in ((["--faults", "explode=1"], "--faults"), (["--start", "2026-11-20 15:00"], "--start"),
                       (["--speed", "0"], "--speed"), (["--replay", "/nonexistent/SPY_1m.csv"], "--replay")):
        result = runner.invoke(app, ["sim", "--port", "0", *args])
        assert result.exit_code == 3, (args, result.output)
        assert flag in result.output


def test_cli_sim_replays_recorded_bars(tmp_path):
    csv = tmp_path / "SPY_1m.csv"
    rows = ["ts,open,high,low,close,volume"]
    for i in range(30):  # 14:30..14:59 UTC = 09:30..09:59 New York on 2026-11-20
        price = 100.0 + i
        rows.append(f"2026-11-20T14:{30 + i:02d}:00Z,{price},{price + 0.5},{price - 0.5},{price + 0.25},{1000 + i}")
    csv.write_text("\n".join(rows) + "\n")
    from ibkrtool.app.sim import load_replay as _load_replay
    from ibkrtool.sim.server import start_sim

    source = _load_replay(str(csv), None, "1m")  # symbol SPY from the file name
    with start_sim(start=datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc), replay=source) as gw:
        ib = IB()
        ib.connect("127.0.0.1", gw.port, clientId=1, timeout=4)
        spy = Stock("SPY", "SMART", "USD")
        ib.qualifyContracts(spy)
        bars = ib.reqHistoricalData(spy, "", "3600 S", "1 min", "TRADES", True, 2)
        ib.disconnect()
    assert [b.close for b in bars] == [100.25 + i for i in range(30)]
