"""``ibkrtool db ...`` through typer's CliRunner on a real database (both backends)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from ibkrtool.cli.main import app
from ibkrtool.store import tables as t
from ibkrtool.store.contracts import placeholder_conid
from ibkrtool.store.csvio import read_bars_csv
from ibkrtool.store.engine import open_engine
from ibkrtool.store.migrate import migrations

Invoke = Callable[..., Result]
FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "spy_1s.csv"


@pytest.fixture
def cli(db_url: str) -> Invoke:
    runner = CliRunner()

    def invoke(*args: str, stdin: str | None = None) -> Result:
        return runner.invoke(app, ["--db", db_url, *args], input=stdin)

    assert invoke("db", "init").exit_code == 0
    return invoke


def _rows(db_url: str, table: sa.Table) -> list:
    engine = open_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table)).all()
    engine.dispose()
    return rows


def test_init_twice_and_status_json(cli: Invoke, db_url: str) -> None:
    newest = migrations()[-1][0]
    again = cli("db", "init")
    assert again.exit_code == 0 and f"already at version {newest}" in again.stderr
    status = cli("db", "status", "--json")
    assert status.exit_code == 0
    body = json.loads(status.stdout)
    assert body.pop("database").startswith(("sqlite:///", "postgresql"))
    assert body == {"schema_version": newest, "series": []}
    assert [r.status for r in _rows(db_url, t.runs)] == ["ok", "ok"]


def test_import_from_stdin_then_export_to_stdout(cli: Invoke, db_url: str) -> None:
    imported = cli("db", "import", "bars", "-", "--symbol", "SPY", "--bar-size", "1 secs", stdin=FIXTURE.read_text())
    assert imported.exit_code == 0, imported.stderr
    assert "120 inserted, 0 updated, 0 unchanged" in imported.stderr
    again = cli("db", "import", "bars", str(FIXTURE), "--symbol", "spy", "--bar-size", "1s")
    assert "0 inserted, 0 updated, 120 unchanged" in again.stderr
    exported = cli("db", "export", "bars", "--symbol", "SPY", "--bar-size", "1s", "-o", "-")
    assert exported.exit_code == 0
    assert exported.stdout.splitlines()[0] == "ts,open,high,low,close,volume,wap,bar_count"
    pd.testing.assert_frame_equal(read_bars_csv(FIXTURE), read_bars_csv(io.StringIO(exported.stdout)))
    status = json.loads(cli("db", "status", "--json").stdout)
    (series,) = status["series"]
    assert series["symbol"] == "SPY" and series["rows"] == 120 and series["conid"] == placeholder_conid("SPY")
    assert series["first"] == "2024-01-02T14:30:00+00:00"
    runs = [r for r in _rows(db_url, t.runs) if r.command == "db import bars"]
    assert [(r.status, r.rows_written) for r in runs] == [("ok", 120), ("ok", 0)]
    assert runs[0].args["symbol"] == "SPY" and "db" not in runs[0].args


def test_export_range_to_file_with_zone(cli: Invoke, tmp_path: Path) -> None:
    cli("db", "import", "bars", str(FIXTURE), "--symbol", "SPY", "--bar-size", "1s", "--conid", "756733")
    target = tmp_path / "out.csv"
    result = cli("db", "export", "bars", "--symbol", "SPY", "--bar-size", "1s", "--start", "2024-01-02 09:30:10",
                 "--end", "2024-01-02T14:30:20Z", "--tz", "America/New_York", "-o", str(target))
    assert result.exit_code == 0, result.stderr
    bars = read_bars_csv(target)
    assert len(bars) == 10 and bars.index[0] == pd.Timestamp("2024-01-02 14:30:10", tz="UTC")


def test_malformed_csv_exits_3_and_writes_nothing(cli: Invoke, db_url: str) -> None:
    bad = FIXTURE.read_text().splitlines()
    bad[57] = bad[57].replace(",", ",x", 1)  # line 58 of the file: open becomes 'x470...'
    result = cli("db", "import", "bars", "-", "--symbol", "SPY", "--bar-size", "1s", stdin="\n".join(bad) + "\n")
    assert result.exit_code == 3
    assert "<stdin>:58: 'open' is not a number" in result.stderr
    assert _rows(db_url, t.bars) == [] and _rows(db_url, t.contracts) == []


def test_naive_csv_needs_tz(cli: Invoke) -> None:
    ib_file = str(FIXTURE.with_name("spy_1s_ib_eastern.csv"))
    refused = cli("db", "import", "bars", ib_file, "--symbol", "SPY", "--bar-size", "1s")
    assert refused.exit_code == 3 and "spy_1s_ib_eastern.csv:2: 'date' has no time zone" in refused.stderr
    accepted = cli("db", "import", "bars", ib_file, "--symbol", "SPY", "--bar-size", "1s", "--tz", "America/New_York")
    assert accepted.exit_code == 0 and "120 inserted" in accepted.stderr


def test_export_of_unknown_symbol_is_bad_input(cli: Invoke) -> None:
    result = cli("db", "export", "bars", "--symbol", "QQQ", "--bar-size", "1s")
    assert result.exit_code == 3 and "no bars stored for QQQ" in result.stderr


def test_unreachable_postgres_exits_5_with_password_masked() -> None:
    url = "postgresql://trader:hunter2secret@127.0.0.1:1/ibkr"
    result = CliRunner().invoke(app, ["--db", url, "db", "status"])
    assert result.exit_code == 5
    assert "cannot connect to PostgreSQL at 127.0.0.1:1 as 'trader' (password ***): connection refused" in result.stderr
    assert "hunter2secret" not in result.stderr + result.stdout


@pytest.mark.parametrize("command", [["db"], ["db", "init"], ["db", "status"], ["db", "import", "bars"],
                                     ["db", "export", "bars"]])
def test_every_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert len(result.stdout.strip().splitlines()) > 3
