"""Signals on real processes: SIGTERM unwinds like Ctrl-C (transaction rolled back, run marked interrupted), prints
one ``error: terminated`` line and exits 143; SIGINT prints ``error: interrupted`` and exits 130. And an unreachable
gateway prints exactly one line. Readiness is a line on stderr (or a row in the run journal), never a sleep."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select

# A command that opens a run in the journal and a write transaction, says "ready" on stderr, then blocks:
# run through the real console-script entry (ibkrtool.cli.main.run), so the shell's signal handling is what's tested.
BLOCKING_APP = textwrap.dedent("""
    import sys, threading, typer
    from ibkrtool.cli import main as shell
    from ibkrtool.store.engine import open_engine
    from ibkrtool.store.migrate import init_db
    from ibkrtool.store.runs import track_run

    app = typer.Typer(cls=shell.IbkrGroup, callback=shell.main)

    @app.command()
    def block(ctx: typer.Context) -> None:
        engine = open_engine(ctx.find_root().obj.settings.db_url)
        init_db(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE scratch (x INTEGER)")
        with track_run(engine, "block", {}), engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO scratch VALUES (1)")
            print("ready", file=sys.stderr, flush=True)
            threading.Event().wait()

    @app.command()
    def other() -> None:
        pass

    shell.app = app
    sys.argv = ["ibkrtool", "--db", sys.argv[1], "block"]
    shell.run()
""")


def _start(args: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _wait_for(proc: subprocess.Popen, marker: str) -> list[str]:
    seen = []
    for line in proc.stderr:
        seen.append(line.rstrip("\n"))
        if marker in line:
            return seen
    proc.wait(timeout=10)
    raise AssertionError(f"no {marker!r} on stderr before exit {proc.returncode}: {seen}")


def _journal(url: str) -> tuple[dict[str, str], int]:
    """The run journal (command → status) and the rows of the scratch table."""
    from ibkrtool.store import tables
    from ibkrtool.store.engine import open_engine

    engine = open_engine(url)
    with engine.connect() as conn:
        runs = dict(conn.execute(select(tables.runs.c.command, tables.runs.c.status)).all())
        scratch = conn.exec_driver_sql("SELECT count(*) FROM scratch").scalar_one()
    engine.dispose()
    return runs, scratch


@pytest.mark.parametrize(("sig", "code", "word"), [(signal.SIGTERM, 143, "terminated"),
                                                   (signal.SIGINT, 130, "interrupted")])
def test_signal_unwinds_rolls_back_and_exits(tmp_path: Path, sig: int, code: int, word: str) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    proc = _start([sys.executable, "-c", BLOCKING_APP, url])
    _wait_for(proc, "ready")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert err.strip().splitlines() == [f"error: {word}"]
    runs, scratch = _journal(url)
    assert runs.get("block") == "interrupted" and scratch == 0


def _ibkrtool() -> str:
    script = Path(sys.executable).with_name("ibkrtool")
    if not script.exists():
        pytest.skip("the ibkrtool console script is not installed beside this python")
    return str(script)


def test_sigterm_on_a_real_command_blocked_on_stdin(tmp_path: Path) -> None:
    proc = _start([_ibkrtool(), "-vv", "--db", f"sqlite:///{tmp_path / 'x.db'}", "db", "import", "bars", "-",
                   "--symbol", "SPY", "--bar-size", "1m"], stdin=subprocess.PIPE)
    _wait_for(proc, "settings:")  # -vv logs the settings just before the command reads stdin
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    lines = err.strip().splitlines()
    assert lines[-1] == "error: terminated" and sum(line.startswith("error") for line in lines) == 1
    assert "Traceback" not in err


def test_sigterm_is_how_the_sim_is_told_to_stop_cleanly() -> None:
    """A server's normal end is a signal: the sim stops, prints its summary and exits 0 (scripts/sim.sh relies on it),
    unlike a command interrupted in the middle of its work (143)."""
    proc = _start([_ibkrtool(), "sim", "--port", "0"])
    try:
        _wait_for(proc, "listening on")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert err.strip().splitlines()[-1].startswith("sim stopped:")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_gateway_prints_exactly_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "IBKRTOOL_DB_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    result = subprocess.run([_ibkrtool(), "--ib-port", str(_closed_port()), "account-summary"], capture_output=True,
                            text=True, timeout=120, env=env)
    assert result.returncode == 4, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach"), result.stderr
