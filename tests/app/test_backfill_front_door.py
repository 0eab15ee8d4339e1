"""``backfill`` beside the path: the gateway's clock, holidays, a symbol IB does not know, honest summaries."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from ibkrtool.cli.main import app
from ibkrtool.store import tables
from ibkrtool.store.contracts import find_contract
from ibkrtool.store.engine import open_engine

pytestmark = pytest.mark.timeout(120)
runner = CliRunner()
UTC = timezone.utc


def _backfill(url: str, port: int, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["--db", url, "--ib-port", str(port), "backfill", "--pacing-scale", "0.01", *args])


def _bars(url: str, symbol: str) -> int:
    engine = open_engine(url)
    contract = find_contract(engine, symbol)
    with engine.connect() as conn:
        count = 0 if contract is None else conn.execute(
            select(func.count()).select_from(tables.bars).where(tables.bars.c.conid == contract.conid)).scalar_one()
    engine.dispose()
    return int(count)


def test_the_default_range_is_the_last_session_on_the_gateways_clock(sim_gateway, sqlite_url) -> None:
    """The README's first backfill: the sim's clock (2026-11-20 10:00 New York) is weeks behind this machine's;
    the range must come from the gateway's clock, not ours ("start 2026-12-03 is after end 2026-11-21")."""
    assert datetime.now(UTC) > datetime(2026, 11, 21, tzinfo=UTC)  # the premise: the machine is ahead
    result = _backfill(sqlite_url, sim_gateway.port, "--symbol", "SPY", "--bar-size", "1m", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    (series,) = body["series"]
    assert body["gateway_now"].startswith("2026-11-20T15:00")
    assert (series["start"], series["end"]) == ("2026-11-19T14:30:00+00:00", "2026-11-19T21:00:00+00:00")
    assert _bars(sqlite_url, "SPY") == 390


def test_a_holiday_is_nothing_to_do_not_an_error(sim_factory, sqlite_url) -> None:
    sim = sim_factory(start=datetime(2026, 11, 30, 15, 0, tzinfo=UTC))
    result = _backfill(sqlite_url, sim.port, "--symbol", "SPY", "--start", "2026-11-26", "--end", "2026-11-26")
    assert result.exit_code == 0, result.output
    assert "nothing to do: 2026-11-26 is not a trading day for SPY (NYSE)" in result.stderr
    assert "2026-11-25" not in result.output and "2026-11-27" not in result.output  # no dates the user never typed
    assert sim.stats["reqHistoricalData"] == 0
    weekend = _backfill(sqlite_url, sim.port, "-s", "SPY", "--start", "2026-11-28", "--end", "2026-11-29", "--json")
    assert weekend.exit_code == 0 and json.loads(weekend.stdout)["nothing_to_do"][0]["symbol"] == "SPY"


def test_an_unknown_symbol_fails_alone(sim_gateway, sqlite_url) -> None:
    result = _backfill(sqlite_url, sim_gateway.port, "--symbol", "SPY", "--symbol", "ZZZZZ", "--start",
                       "2026-11-19", "--end", "2026-11-19", "--json")
    assert result.exit_code == 6
    body = json.loads(result.stdout)
    assert [s["symbol"] for s in body["series"]] == ["SPY"]
    assert [f["symbol"] for f in body["failures"]] == ["ZZZZZ"]
    assert "1 of 2 symbols failed" in result.stderr and "ZZZZZ" in result.stderr
    assert _bars(sqlite_url, "SPY") == 390


def test_waiting_for_pacing_never_exceeds_the_wall_time(sim_gateway, sqlite_url) -> None:
    result = _backfill(sqlite_url, sim_gateway.port, "-s", "SPY", "-s", "AAPL", "-b", "1s", "--start",
                       "2026-11-18", "--end", "2026-11-19", "--all-hours", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["requests_sent"] > 60  # more than one 10-minute window: the pacer had to wait
    assert 0 < body["waited_s"] <= body["elapsed_s"]


def test_sigterm_mid_backfill_exits_143_keeps_whole_chunks_and_a_rerun_completes(sim_gateway, sqlite_url) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    script = Path(sys.executable).with_name("ibkrtool")
    if not script.exists():
        pytest.skip("the ibkrtool console script is not installed beside this python")
    args = [str(script), "--db", sqlite_url, "--ib-port", str(sim_gateway.port), "backfill", "-s", "SPY", "-b", "1s",
            "--start", "2026-11-16", "--end", "2026-11-19", "--all-hours", "--pacing-scale", "0.01"]
    assert runner.invoke(app, ["--db", sqlite_url, "db", "init"]).exit_code == 0
    engine = open_engine(sqlite_url)
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"})
    deadline = time.monotonic() + 60
    with engine.connect() as conn:  # wait until the first chunk is committed with its coverage row
        while conn.execute(select(func.count()).select_from(tables.coverage)).scalar_one() == 0:
            assert proc.poll() is None and time.monotonic() < deadline, "backfill ended before storing a chunk"
            time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == "error: terminated"
    with engine.connect() as conn:
        status = conn.execute(select(tables.runs.c.status).where(tables.runs.c.command == "backfill")).scalar_one()
        covered = conn.execute(select(func.count()).select_from(tables.coverage)).scalar_one()
    assert status == "interrupted" and covered > 0
    again = _backfill(sqlite_url, sim_gateway.port, *args[args.index("-s"):][:-2], "--json")
    assert again.exit_code == 0, again.output
    from tests.data.test_backfill_sim import sim_bars

    conid = find_contract(engine, "SPY").conid
    lo, hi = datetime(2026, 11, 16, 9, 0, tzinfo=UTC), datetime(2026, 11, 20, 1, 0, tzinfo=UTC)  # 04:00-20:00 NY
    expected = sim_bars(sim_gateway, conid, "1 secs", lo, hi, "TRADES", False)
    assert _bars(sqlite_url, "SPY") == len(expected) > 4 * 3600  # every bar of four sessions, once
    engine.dispose()
