"""``execute`` through the front door: ``app.execute`` (typed request in, report out) and the CLI's new options —
``--json``, ``--log`` appending, ``--tz`` for zone-less ``--bars``/``--positions`` files, one ``--symbol``."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from ibkrtool.app.execute import ExecuteReport, ExecuteRequest, execute
from ibkrtool.app.live import LiveRequest
from ibkrtool.app.workspace import Workspace
from ibkrtool.cli.main import app
from ibkrtool.errors import InputError
from ibkrtool.execution.identity import parse_key
from ibkrtool.model import Instrument
from ibkrtool.model.when import When, zone_named
from ibkrtool.settings import Settings
from ibkrtool.store import tables as t
from ibkrtool.store.engine import open_engine
from ibkrtool.store.executions import read_executions
from tests.execution.test_execute_simulate import BARS, POSITIONS

SPY = Instrument.parse("SPY")
# The same bars and positions written in New York time without a zone (14:30Z = 09:30 New York in March).
NAIVE_BARS = BARS.replace("T14:", " 09:").replace(":00Z,", ":00,")
NAIVE_POSITIONS = POSITIONS.replace("T14:", " 09:").replace(":00Z,", ":00,")


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "bars.csv").write_text(BARS)
    (tmp_path / "positions.csv").write_text(POSITIONS)
    (tmp_path / "naive_bars.csv").write_text(NAIVE_BARS)
    (tmp_path / "naive_positions.csv").write_text(NAIVE_POSITIONS)
    return tmp_path


def cli(url: str, *args: str) -> Result:
    return CliRunner().invoke(app, ["--db", url, "execute", *args])


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def executions(url: str) -> list[dict]:
    """The stored executions; none when the command stopped before creating the database."""
    path = Path(url.removeprefix("sqlite:///"))
    return read_executions(open_engine(url)) if path.exists() and path.stat().st_size else []


def table_value(text: str, item: str) -> str:
    """The value cell of ``item`` in the summary table drawn in ``text``."""
    found = re.search(rf"│ {re.escape(item)}\s*│ (.*?)\s*│", text)
    assert found, f"no row {item!r} in:\n{text}"
    return found[1]


# ---------------------------------------------------------------------------------------------- the app


def test_app_execute_simulates_records_and_journals(files: Path, sqlite_url: str) -> None:
    request = ExecuteRequest(positions=str(files / "positions.csv"), instrument=SPY, quantity=100,
                             bars=str(files / "bars.csv"))
    with Workspace(Settings(db_url=sqlite_url)) as ws:
        report = execute(ws, request)
        again = execute(ws, request)
    assert isinstance(report, ExecuteReport)
    assert (report.mode, report.account, report.symbol) == ("simulate", "SIM", "SPY")
    assert re.fullmatch(r"csv-[0-9a-f]{12}", report.run_id)  # from the file's content and SPY, not its name
    assert (len(report.intents), report.placed, len(report.fills), report.commission) == (3, 2, 2, 2.0)
    assert [(f.side.value, f.quantity, f.price) for f in report.fills] == [("BUY", 100, 101.4), ("SELL", 200, 103.4)]
    assert (again.placed, len(again.already_placed), again.fills) == (0, 2, [])  # never twice
    data = report.as_dict()
    assert json.loads(json.dumps(data)) == data  # JSON-plain
    assert [e["commission"] for e in data["executions"]] == [1.0, 1.0]
    engine = open_engine(sqlite_url)
    with engine.connect() as conn:
        runs = conn.execute(sa.select(t.runs.c.command, t.runs.c.status, t.runs.c.rows_written)).all()
    assert [tuple(r) for r in runs] == [("execute", "ok", 2), ("execute", "ok", 0)]
    assert len(read_executions(engine, mode="simulate")) == 2


@pytest.mark.parametrize(("request_", "message"), [
    (ExecuteRequest(positions="p.csv", instrument=SPY, mode="live"), "--yes-i-mean-real-money"),
    (ExecuteRequest(positions="p.csv", instrument=SPY, mode="live", real_money_confirmed=True), "--max-order-value"),
    (ExecuteRequest(positions="p.csv", instrument=SPY, mode="live", real_money_confirmed=True, max_order_value=0),
     "--max-order-value"),
    (ExecuteRequest(run_id="st-1", strategy="ema-aroon", instrument=SPY), "exactly one of"),
    (ExecuteRequest(positions="p.csv", instrument=SPY, on_reject="maybe"), "--on-reject"),
    (ExecuteRequest(positions="p.csv", instrument=SPY, mode="yolo"), "mode"),
])
def test_app_refuses_before_touching_anything(request_: ExecuteRequest, message: str, tmp_path: Path) -> None:
    db = tmp_path / "never.db"
    with Workspace(Settings(db_url=f"sqlite:///{db}")) as ws, pytest.raises(InputError, match=re.escape(message)):
        execute(ws, request_)
    assert not db.exists()


def test_live_request_refuses_a_bare_date_for_until() -> None:
    request = LiveRequest("ema-aroon", SPY, until=When.parse("2026-11-20", "--until"))
    with pytest.raises(InputError, match="is a date; give an instant"):
        request.check()
    instant = LiveRequest("ema-aroon", SPY, until=When.parse("2026-11-20T16:00:00", "--until",
                                                             zone_named("America/New_York")))
    assert instant.config().until is not None and instant.config().until.hour == 21  # 16:00 New York in UTC


# ---------------------------------------------------------------------------------------------- --json


def test_json_summary_parses_and_matches_the_table(files: Path, sqlite_url: str) -> None:
    result = cli(sqlite_url, "--positions", str(files / "positions.csv"), "-s", "SPY", "-n", "100", "--bars",
                 str(files / "bars.csv"), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # stdout is the JSON alone; the table went to stderr
    assert "┃ item" in result.stderr and "┃ item" not in result.stdout
    mode = f"{data['mode']} (account {data['account']})"
    assert table_value(result.stderr, "mode") == mode == "simulate (account SIM)"
    assert table_value(result.stderr, "intents") == str(data["intents"]) == "3"
    assert table_value(result.stderr, "orders placed") == str(data["placed"]) == "2"
    assert table_value(result.stderr, "already placed (skipped)") == str(data["already_placed"]) == "0"
    assert table_value(result.stderr, "rejected") == str(data["rejected"]) == "0"
    assert table_value(result.stderr, "fills") == f"{data['fills']} (commission {data['commission']:,.2f})"
    assert [(e["side"], e["quantity"], e["price"], e["commission"]) for e in data["executions"]] == [
        ("BUY", 100, 101.4, 1.0), ("SELL", 200, 103.4, 1.0)]
    assert data["skipped"][0]["reason"].startswith("no bar after the signal bar")


def test_without_json_the_table_is_data_on_stdout(files: Path, sqlite_url: str) -> None:
    result = cli(sqlite_url, "--positions", str(files / "positions.csv"), "-s", "SPY", "--bars",
                 str(files / "bars.csv"))
    assert result.exit_code == 0, result.output
    assert table_value(result.stdout, "intents") == "3"
    assert "no bar after the signal bar" in result.stderr


def test_json_and_log_to_stdout_together_are_refused(files: Path, sqlite_url: str) -> None:
    result = cli(sqlite_url, "--positions", str(files / "positions.csv"), "-s", "SPY", "--json", "--log", "-")
    assert result.exit_code == 3 and "both write to stdout" in result.output


# ---------------------------------------------------------------------------------------------- --log


def test_log_appends_on_a_rerun_and_keeps_the_first_runs_lines(files: Path, sqlite_url: str) -> None:
    log = files / "execution_log.csv"
    first = cli(sqlite_url, "--positions", str(files / "positions.csv"), "-s", "SPY", "-n", "100", "--bars",
                str(files / "bars.csv"), "--log", str(log))
    assert first.exit_code == 0, first.output
    first_rows = rows_of(log.read_text())
    assert len(first_rows) == 2
    other = files / "other.csv"  # another run (other content, its own order refs): its fills are appended
    other.write_text(POSITIONS.replace("entry:long", "entry:long-2"))
    second = cli(sqlite_url, "--positions", str(other), "-s", "SPY", "-n", "10", "--bars", str(files / "bars.csv"),
                 "--log", str(log))
    assert second.exit_code == 0, second.output
    text = log.read_text()
    assert text.count("time,symbol,side") == 1  # one header
    rows = rows_of(text)
    assert rows[:2] == first_rows
    assert [(r["side"], r["quantity"]) for r in rows[2:]] == [("BUY", "10"), ("SELL", "20")]
    assert {r["order_ref"] for r in rows[2:]}.isdisjoint(r["order_ref"] for r in first_rows)


def test_log_header_is_written_to_an_empty_file(files: Path, sqlite_url: str) -> None:
    log = files / "empty.csv"
    log.write_text("")
    result = cli(sqlite_url, "--positions", str(files / "positions.csv"), "-s", "SPY", "--bars",
                 str(files / "bars.csv"), "--log", str(log))
    assert result.exit_code == 0, result.output
    assert log.read_text().splitlines()[0] == "time,symbol,side,quantity,price,commission,order_ref,mode"
    assert len(rows_of(log.read_text())) == 2


def test_a_file_that_is_not_an_execution_log_is_refused_before_any_fill(files: Path, sqlite_url: str) -> None:
    result = cli(sqlite_url, "--positions", str(files / "positions.csv"), "-s", "SPY", "--bars",
                 str(files / "bars.csv"), "--log", str(files / "bars.csv"))
    assert result.exit_code == 3 and "is not an execution log" in result.output
    assert (files / "bars.csv").read_text() == BARS
    assert executions(sqlite_url) == []


def test_log_dash_writes_the_log_to_stdout_and_the_table_to_stderr(files: Path, sqlite_url: str) -> None:
    result = cli(sqlite_url, "--positions", str(files / "positions.csv"), "-s", "SPY", "--bars",
                 str(files / "bars.csv"), "--log", "-")
    assert result.exit_code == 0, result.output
    assert [r["side"] for r in rows_of(result.stdout)] == ["BUY", "SELL"]
    assert table_value(result.stderr, "fills") == "2 (commission 2.00)"


# ---------------------------------------------------------------------------------------------- times, symbols


def test_zone_less_bars_file_needs_tz(files: Path, sqlite_url: str) -> None:
    args = ["--positions", str(files / "positions.csv"), "-s", "SPY", "-n", "100", "--bars",
            str(files / "naive_bars.csv"), "--json"]
    refused = cli(sqlite_url, *args)
    assert refused.exit_code == 3 and "--tz" in refused.output
    assert executions(sqlite_url) == []
    accepted = cli(sqlite_url, *args, "--tz", "America/New_York")
    assert accepted.exit_code == 0, accepted.output
    fills = json.loads(accepted.stdout)["executions"]  # the same instants as the zoned file: same fills
    assert [(f["time"], f["price"]) for f in fills] == [("2024-03-04T14:40:00Z", 101.4),
                                                        ("2024-03-04T14:50:00Z", 103.4)]


def test_zone_less_positions_file_needs_tz(files: Path, sqlite_url: str) -> None:
    args = ["--positions", str(files / "naive_positions.csv"), "-s", "SPY", "-n", "100", "--bars",
            str(files / "bars.csv"), "--json"]
    refused = cli(sqlite_url, *args)
    assert refused.exit_code == 3
    assert "has no time zone" in refused.output and "--tz" in refused.output
    assert executions(sqlite_url) == []
    accepted = cli(sqlite_url, *args, "--tz", "America/New_York")
    assert accepted.exit_code == 0, accepted.output
    data = json.loads(accepted.stdout)
    assert [parse_key(ref)["bar"] for ref in data["placed_refs"]] == ["20240304143500", "20240304144500"]


def test_unknown_tz_is_refused(files: Path, sqlite_url: str) -> None:
    result = cli(sqlite_url, "--positions", str(files / "positions.csv"), "-s", "SPY", "--tz", "Mars/Olympus")
    assert result.exit_code == 3 and "unknown time zone" in result.output


def test_a_second_symbol_is_refused(files: Path, sqlite_url: str) -> None:
    result = cli(sqlite_url, "--positions", str(files / "positions.csv"), "-s", "SPY", "-s", "QQQ")
    assert result.exit_code == 3
    assert "execute takes one --symbol, got 2 (SPY, QQQ)" in result.output
    assert executions(sqlite_url) == []


def test_two_modes_are_refused(files: Path, sqlite_url: str) -> None:
    result = cli(sqlite_url, "--positions", str(files / "positions.csv"), "-s", "SPY", "--paper", "--live")
    assert result.exit_code == 3 and "choose one of --simulate, --paper, --live" in result.output
