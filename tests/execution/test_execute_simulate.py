"""``ibkrtool execute --simulate`` end to end on a real database: known positions in, the expected log out."""

from __future__ import annotations

import csv
import io

import pytest
from typer.testing import CliRunner

from ibkrtool.cli.main import app
from ibkrtool.execution.identity import parse_key
from ibkrtool.execution.targets import read_positions_csv
from ibkrtool.store.engine import open_engine
from ibkrtool.store.executions import read_executions

BARS = """ts,open,high,low,close,volume
2024-03-04T14:30:00Z,100.0,101.0,99.0,100.5,1000
2024-03-04T14:35:00Z,100.6,102.0,100.0,101.5,1000
2024-03-04T14:40:00Z,101.4,103.0,101.0,102.5,1000
2024-03-04T14:45:00Z,102.6,104.0,102.0,103.5,1000
2024-03-04T14:50:00Z,103.4,104.0,100.0,101.0,1000
2024-03-04T14:55:00Z,100.9,102.0,99.0,99.5,1000
"""
# long at 14:35's close, reverse to short at 14:45's close, flat at 14:55's close (last bar: no next open)
POSITIONS = """ts,close,position,signal
2024-03-04T14:30:00Z,100.5,0,
2024-03-04T14:35:00Z,101.5,1,entry:long
2024-03-04T14:40:00Z,102.5,1,
2024-03-04T14:45:00Z,103.5,-1,reverse
2024-03-04T14:50:00Z,101.0,-1,
2024-03-04T14:55:00Z,99.5,0,exit
"""
TRADES = """side,entry_time,entry_price,exit_time,exit_price,bars_held,reason
long,2024-03-04T14:35:00Z,101.5,2024-03-04T14:45:00Z,103.5,2,reverse
short,2024-03-04T14:45:00Z,103.5,2024-03-04T14:55:00Z,99.5,2,exit
"""


@pytest.fixture
def files(tmp_path):
    (tmp_path / "bars.csv").write_text(BARS)
    (tmp_path / "positions.csv").write_text(POSITIONS)
    (tmp_path / "dt_positions.csv").write_text(TRADES)
    return tmp_path


def run(url: str, *args: str):
    return CliRunner().invoke(app, ["--db", url, "execute", *args], catch_exceptions=False)


def log_of(path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def test_next_open_fills_write_the_expected_log(files, db_url):
    log = files / "execution_log.csv"
    result = run(db_url, "--positions", str(files / "positions.csv"), "--symbol", "SPY", "--quantity", "100",
                 "--bars", str(files / "bars.csv"), "--log", str(log))
    assert result.exit_code == 0, result.output
    rows = log_of(log)
    assert [(r["time"], r["side"], r["quantity"], r["price"], r["commission"]) for r in rows] == [
        ("2024-03-04T14:40:00Z", "BUY", "100", "101.4", "1"),     # 100 sh × 0.005 = 0.50 → USD 1.00 minimum
        ("2024-03-04T14:50:00Z", "SELL", "200", "103.4", "1"),    # reversal: 200 sh × 0.005 = 1.00
    ]
    assert {r["mode"] for r in rows} == {"simulate"}
    # the key names mode (s), instrument (x: SPY has no IB conid here), run and account (digest) and signal bar
    key = parse_key(rows[0]["order_ref"])
    assert key is not None and (key["mode"], key["conid"], key["bar"]) == ("s", "x", "20240304143500")
    assert "no bar after the signal bar" in result.stderr  # the exit on the last bar has no next open
    stored = read_executions(open_engine(db_url), mode="simulate")
    assert [(r["side"], r["quantity"], r["price"]) for r in stored] == [("BUY", 100, 101.4), ("SELL", 200, 103.4)]


def test_close_fills_from_round_trips_file_and_rerun_places_nothing(files, db_url):
    log = files / "log.csv"
    args = ["--positions", str(files / "dt_positions.csv"), "--symbol", "SPY", "--quantity", "10", "--fill",
            "close", "--log", str(log)]
    first = run(db_url, *args)
    assert first.exit_code == 0, first.output
    assert [(r["time"], r["side"], r["quantity"], r["price"]) for r in log_of(log)] == [
        ("2024-03-04T14:40:00Z", "BUY", "10", "101.5"),
        ("2024-03-04T14:50:00Z", "SELL", "20", "103.5"),
        ("2024-03-04T15:00:00Z", "BUY", "10", "99.5"),  # close fills are stamped at the bar's end
    ]
    first_log = log.read_text()
    again = run(db_url, *args)
    assert again.exit_code == 0
    assert log.read_text() == first_log  # --log appends: the rerun adds no row and keeps the first run's
    assert again.stderr.count(": already placed") == 3
    assert len(read_executions(open_engine(db_url))) == 3


def test_round_trips_become_targets():
    t = read_positions_csv(io.StringIO(TRADES))
    assert [f"{x:%H:%M}" for x in t.ts] == ["14:35", "14:45", "14:55"]
    assert t.position.tolist() == [1.0, -1.0, 0.0]
    assert t.close.tolist() == [101.5, 103.5, 99.5]


def test_bad_positions_file_is_refused(tmp_path, sqlite_url):
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    result = CliRunner().invoke(app, ["--db", sqlite_url, "execute", "--positions", str(bad), "--symbol", "SPY"])
    assert result.exit_code == 3
    assert "positions CSV needs columns" in result.output


def test_live_needs_both_flags(tmp_path, sqlite_url):
    (tmp_path / "p.csv").write_text(POSITIONS)
    base = ["--db", sqlite_url, "execute", "--positions", str(tmp_path / "p.csv"), "--symbol", "SPY", "--live"]
    assert CliRunner().invoke(app, base).exit_code == 3
    missing_cap = CliRunner().invoke(app, [*base, "--yes-i-mean-real-money"])
    assert missing_cap.exit_code == 3 and "--max-order-value" in missing_cap.output


def test_latest_stored_run_is_filled_on_stored_bars(db_url):
    import numpy as np

    from ibkrtool.model.contract import Contract
    from ibkrtool.store.bars import write_bars
    from ibkrtool.store.contracts import upsert_contract
    from ibkrtool.store.migrate import init_db
    from ibkrtool.store.strategy_runs import save_strategy_run
    from tests.backtest.helpers import random_bars, random_positions

    engine = open_engine(db_url)
    init_db(engine)
    upsert_contract(engine, Contract(conid=756733, symbol="SPY", sec_type="STK", exchange="SMART",
                                     primary_exchange="ARCA", currency="USD", local_symbol="SPY", trading_class="SPY",
                                     min_tick=0.01, time_zone="America/New_York", details={}))
    bars = random_bars(120)
    write_bars(engine, 756733, "5m", "TRADES", bars)
    positions = random_positions(120)
    frame = bars[[]].assign(position=positions, signal=None)
    run_id = save_strategy_run(engine, {"strategy": "ema-aroon", "params": {}, "engine": "python", "conid": 756733,
                                        "symbol": "SPY", "bar_size": "5m", "what_to_show": "TRADES"}, frame)
    result = run(db_url, "--strategy", "ema-aroon", "--symbol", "SPY", "--quantity", "10")
    assert result.exit_code == 0, result.output
    stored = read_executions(engine, run_id=run_id)
    changes = np.flatnonzero(np.diff(positions, prepend=0.0))
    assert len(stored) == len(changes[changes < 119])  # every change but one on the last bar (no next open)
    opens = bars["open"]
    for row, i in zip(stored, changes, strict=False):
        assert row["price"] == opens.iloc[i + 1] and row["exec_time"] == bars.index[i + 1]
