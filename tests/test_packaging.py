"""The wheel is complete: built from this checkout, installed in a clean venv (dependencies from PyPI), it runs
``db init``, ``db import bars`` and ``db status`` against SQLite in an empty folder."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ibkrtool.store.migrate import migrations

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "spy_1s.csv"


def _run(*cmd: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_wheel_installs_and_runs_the_db_commands(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "build", "--wheel", "--outdir", dist, ROOT, cwd=ROOT)
    (wheel,) = dist.glob("ibkrtool-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "ibkrtool/_resources/sql/001_schema.sql" in names
    assert "ibkrtool/store/bars.py" in names and "ibkrtool/cli/db.py" in names

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    _run(venv / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check", wheel)
    ibkrtool = venv / "bin" / "ibkrtool"
    work = tmp_path / "work"
    work.mkdir()
    _run(ibkrtool, "db", "init", cwd=work)
    _run(ibkrtool, "db", "import", "bars", FIXTURE, "--symbol", "SPY", "--bar-size", "1s", cwd=work)
    status = json.loads(_run(ibkrtool, "db", "status", "--json", cwd=work))
    assert (work / "ibkrtool.db").exists()
    assert status["schema_version"] == migrations()[-1][0]  # the newest shipped migration
    (series,) = status["series"]
    assert (series["symbol"], series["bar_size"], series["rows"]) == ("SPY", "1s", 120)
    table = _run(ibkrtool, "db", "status", cwd=work)
    assert "SPY" in table
