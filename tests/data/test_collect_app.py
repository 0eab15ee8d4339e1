"""``collect`` through the front door: ``app.collect`` (request in, report out, run journaled) and the CLI over it
(``-o -`` on stdout, ``--until`` under the one time rule, ``--json``, a clean stop on SIGTERM with exit 143).

Sims run at speed 10 (a real second is ten market seconds) to keep the tests short; readiness is a line on a pipe,
never a sleep.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from ibkrtool.app.collect import CollectRequest, collect
from ibkrtool.app.workspace import Workspace
from ibkrtool.cli.main import app
from ibkrtool.errors import InputError
from ibkrtool.model import Instrument
from ibkrtool.settings import Settings
from ibkrtool.store import tables as t
from ibkrtool.store.bars import read_bars
from ibkrtool.store.engine import open_engine

UTC = timezone.utc
SPY = 756733
HEADER = "symbol,bar_size,ts,open,high,low,close,volume,wap,bar_count"


def _runs(url: str) -> list:
    engine = open_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.runs.c.command, t.runs.c.status, t.runs.c.rows_written)).all()
    engine.dispose()
    return rows


def _invoke(url: str, port: int, *args: str):
    return CliRunner().invoke(app, ["--db", url, "--ib-port", str(port), "collect", *args])


# ----------------------------------------------------------------------------------------------- the app function


@pytest.mark.timeout(60)
def test_the_stop_event_ends_a_run_cleanly_and_journals_it_interrupted(sim_factory, sqlite_url) -> None:
    sim = sim_factory(speed=10.0)
    started: list[asyncio.AbstractEventLoop] = []

    def on_start(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
        started.append(loop)
        loop.call_later(1.5, stop.set)  # what Ctrl-C does through signals.stop_on_signals

    request = CollectRequest((Instrument.parse("SPY"), Instrument.parse("EUR.USD")), pacing_scale=0.01)
    with Workspace(Settings(db_url=sqlite_url, ib_port=sim.port)) as ws:
        report = collect(ws, request, on_start=on_start)
    assert len(started) == 1 and report.stopped_by == "stop" and report.interrupted
    assert [s["symbol"] for s in report.symbols] == ["SPY", "EUR.USD"]
    assert sum(s["bars_1s"] for s in report.symbols) == report.bars_1s > 0
    assert sum(s["bars_5s"] for s in report.symbols) == report.bars_5s
    engine = open_engine(sqlite_url)
    assert len(read_bars(engine, SPY, "1s", "TRADES")) == report.symbols[0]["bars_1s"]
    assert _runs(sqlite_url) == [("collect", "interrupted", report.bars_5s + report.bars_1s)]
    assert json.loads(json.dumps(report.as_dict()))["stopped_by"] == "stop"


@pytest.mark.timeout(60)
def test_a_duration_ends_a_run_ok_and_a_file_output_is_appended(sim_factory, sqlite_url, tmp_path: Path) -> None:
    sim = sim_factory(speed=10.0)
    out = tmp_path / "bars.csv"
    request = CollectRequest((Instrument.parse("SPY"),), duration_s=1.5, output=str(out), pacing_scale=0.01)
    with Workspace(Settings(db_url=sqlite_url, ib_port=sim.port)) as ws:
        first = collect(ws, request)
        second = collect(ws, request)
    assert first.stopped_by == second.stopped_by == "duration" and not first.interrupted
    lines = out.read_text().splitlines()
    assert lines[0] == HEADER and lines.count(HEADER) == 1  # appended: one header
    total = first.bars_5s + first.bars_1s + second.bars_5s + second.bars_1s
    assert len(lines) - 1 == total > 0
    assert [r[1] for r in _runs(sqlite_url)] == ["ok", "ok"]


def test_requests_that_cannot_run_are_refused_before_the_gateway(sqlite_url, tmp_path: Path) -> None:
    spy = (Instrument.parse("SPY"),)
    past = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)
    with Workspace(Settings(db_url=sqlite_url, ib_port=1), clock=lambda: past + timedelta(seconds=1)) as ws:
        with pytest.raises(InputError, match="no symbol"):
            collect(ws, CollectRequest(()))
        with pytest.raises(InputError, match="already past"):
            collect(ws, CollectRequest(spy, until=past))
        with pytest.raises(InputError, match="--duration or --until"):
            collect(ws, CollectRequest(spy))
        with pytest.raises(InputError, match="cannot write --output"):
            collect(ws, CollectRequest(spy, duration_s=1, output=str(tmp_path / "no" / "x.csv")))


# ----------------------------------------------------------------------------------------------- the CLI


@pytest.mark.timeout(60)
def test_output_dash_writes_the_csv_to_stdout_and_no_file(sim_factory, sqlite_url, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    sim = sim_factory(speed=10.0)
    result = _invoke(sqlite_url, sim.port, "-s", "SPY", "--duration", "2s", "-o", "-", "--pacing-scale", "0.01")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "-").exists()
    rows = list(csv.reader(result.stdout.splitlines()))
    assert ",".join(rows[0]) == HEADER and len(rows) > 1
    assert {row[0] for row in rows[1:]} == {"SPY"} and {row[1] for row in rows[1:]} <= {"5s", "1s"}
    assert "collected" in result.stderr and "collected" not in result.stdout  # the summary is talk: stderr
    engine = open_engine(sqlite_url)
    stored = len(read_bars(engine, SPY, "5s", "TRADES")) + len(read_bars(engine, SPY, "1s", "TRADES"))
    assert stored == len(rows) - 1


def test_json_with_output_dash_is_refused(sqlite_url) -> None:
    result = _invoke(sqlite_url, 1, "-s", "SPY", "--duration", "2s", "-o", "-", "--json")
    assert result.exit_code == 3 and "--json and --output -" in result.stderr


def test_until_a_bare_date_is_refused_with_the_fix(sqlite_url) -> None:
    result = _invoke(sqlite_url, 1, "-s", "SPY", "--until", "2026-11-20")
    assert result.exit_code == 3
    assert "give a time too" in result.stderr and "2026-11-20T21:00:00Z" in result.stderr


def test_until_without_a_zone_or_tz_is_refused(sqlite_url) -> None:
    result = _invoke(sqlite_url, 1, "-s", "SPY", "--until", "2026-11-20T16:00:00")
    assert result.exit_code == 3 and "--tz" in result.stderr


@pytest.mark.timeout(60)
def test_until_with_tz_ends_the_run_and_json_is_the_summary(sim_factory, sqlite_url) -> None:
    sim = sim_factory(speed=10.0)
    zone = ZoneInfo("America/New_York")
    deadline = (datetime.now(UTC) + timedelta(seconds=4)).astimezone(zone).replace(microsecond=0)
    naive = deadline.replace(tzinfo=None).isoformat()
    result = _invoke(sqlite_url, sim.port, "-s", "SPY", "--until", naive, "--tz", "America/New_York", "--json",
                     "--pacing-scale", "0.01")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["stopped_by"] == "until" and report["output"] is None
    assert report["bars_1s"] > 0 and report["symbols"][0]["symbol"] == "SPY"
    assert datetime.now(UTC) >= deadline
    assert [(c, s) for c, s, _ in _runs(sqlite_url)] == [("collect", "ok")]


@pytest.mark.timeout(60)
def test_sigterm_stops_cleanly_exits_143_and_journals_interrupted(sim_factory, tmp_path: Path) -> None:
    sim = sim_factory(speed=10.0)
    url = f"sqlite:///{tmp_path}/c.db"
    proc = subprocess.Popen([sys.executable, "-m", "ibkrtool", "--db", url, "--ib-port", str(sim.port), "collect",
                             "-s", "SPY", "-o", "-", "--pacing-scale", "0.01"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    try:
        seen = []
        for line in proc.stdout:  # wait until bars of both sizes were stored and written
            seen.append(line.rstrip("\n"))
            if {"5s", "1s"} <= {row.split(",")[1] for row in seen[1:]}:
                break
        assert seen and seen[0] == HEADER, seen
        proc.send_signal(signal.SIGTERM)
        rest = proc.stdout.read()  # through the file object: communicate() would skip the lines it buffered
        err = proc.stderr.read()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    lines = err.strip().splitlines()
    assert lines[-1] == "error: terminated" and sum(line.startswith("error") for line in lines) == 1, err
    assert "Traceback" not in err and any(line.startswith("collected") for line in lines)
    rows = [row.split(",") for row in seen[1:] + rest.splitlines()]
    engine = open_engine(url)
    five, one = read_bars(engine, SPY, "5s", "TRADES"), read_bars(engine, SPY, "1s", "TRADES")
    assert len(five) == sum(r[1] == "5s" for r in rows) >= 1  # every bar stored was written, and flushed
    assert len(one) == sum(r[1] == "1s" for r in rows) >= 1
    assert _runs(url) == [("collect", "interrupted", len(five) + len(one))]
    assert not (tmp_path / "-").exists()


def test_an_unknown_symbol_fails_alone_and_the_others_are_collected(sim_factory, sqlite_url) -> None:
    from typer.testing import CliRunner

    from ibkrtool.cli.main import app

    sim = sim_factory(speed=60)
    result = CliRunner().invoke(app, ["--db", sqlite_url, "--ib-port", str(sim.port), "collect", "-s", "SPY", "-s",
                                      "ZZZZ", "--duration", "2s", "--json"])
    assert result.exit_code == 6, result.output
    body = json.loads(result.stdout)
    assert [s["symbol"] for s in body["symbols"]] == ["SPY"] and body["bars_5s"] > 0
    assert [f["symbol"] for f in body["failures"]] == ["ZZZZ"]
    assert "1 of 2 symbols failed" in result.stderr
