"""Order identity (``execution.identity``), positions CSVs as users have them (``execution.targets``/``sources``) and
the store's look-up of placed keys — pure or on a real database, no gateway."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from ibkrtool.errors import InputError
from ibkrtool.execution.executor import stored_placed
from ibkrtool.execution.identity import (
    ORDER_REF_MAX,
    OrderIdentity,
    is_legacy_ref,
    legacy_order_ref,
    parse_key,
)
from ibkrtool.execution.planner import plan_from_targets, rebalance
from ibkrtool.execution.sources import positions_runs
from ibkrtool.execution.targets import read_positions_csv, read_positions_file
from ibkrtool.model import Instrument
from ibkrtool.model.order import Fill, Side
from ibkrtool.store.engine import open_engine
from ibkrtool.store.executions import record_fills, refs_with_executions
from ibkrtool.store.migrate import init_db

BAR = datetime(2024, 3, 4, 14, 35, tzinfo=timezone.utc)
NEW_YORK = ZoneInfo("America/New_York")
SPY = Instrument.parse("SPY")


# ---------------------------------------------------------------------------------------------- the key


def test_key_names_mode_conid_and_bar_and_fits_the_field() -> None:
    key = OrderIdentity("paper", "DU1234567", 756733, "st-20240304-abcdef").key(BAR)
    parts = parse_key(key)
    assert parts is not None and (parts["mode"], parts["conid"], parts["bar"]) == ("p", "756733", "20240304143500")
    assert key == f"p756733-{parts['digest']}-20240304143500"
    # the longest possible key: 10-digit conid, any account or run id (hashed)
    longest = OrderIdentity("live", "U" * 40, 2**31 - 1, "live-pivot-breakout-EUR.USD-5 mins" * 3).key(BAR)
    assert len(longest) == 37 <= ORDER_REF_MAX
    # a stand-in conid (negative) is written x; the digest still tells instruments apart
    standin = OrderIdentity("simulate", "SIM", -123456789012345, "csv-1").key(BAR)
    assert parse_key(standin)["conid"] == "x" and len(standin) <= ORDER_REF_MAX


def test_every_part_of_the_identity_changes_the_key() -> None:
    base = OrderIdentity("paper", "DU1234567", 756733, "run-1")
    variants = [base, OrderIdentity("live", "DU1234567", 756733, "run-1"),
                OrderIdentity("simulate", "DU1234567", 756733, "run-1"),
                OrderIdentity("paper", "DU7654321", 756733, "run-1"),
                OrderIdentity("paper", "DU1234567", 320227571, "run-1"),
                OrderIdentity("paper", "DU1234567", 756733, "run-2")]
    keys = {v.key(BAR) for v in variants} | {base.key(BAR + timedelta(seconds=1))}
    assert len(keys) == len(variants) + 1
    assert base.key(BAR) == OrderIdentity("paper", "DU1234567", 756733, "run-1", "old-id").key(BAR)  # deterministic


def test_legacy_keys_are_the_old_format_and_recognised() -> None:
    ident = OrderIdentity("paper", "DU1234567", 756733, "csv-0123456789ab", "csv-positions.csv")
    assert ident.legacy(BAR) == legacy_order_ref("csv-positions.csv", BAR) == "csv-positions.csv:20240304T143500Z"
    assert OrderIdentity("paper", "DU1", 1, "st-7").legacy(BAR) == "st-7:20240304T143500Z"  # no legacy id: run id
    assert is_legacy_ref(ident.legacy(BAR)) and not is_legacy_ref(ident.key(BAR))
    assert parse_key(ident.legacy(BAR)) is None


def test_naive_bars_and_unknown_modes_are_refused() -> None:
    with pytest.raises(InputError, match="timezone-aware"):
        OrderIdentity("paper", "DU1", 1, "r").key(datetime(2024, 3, 4, 14, 35))
    with pytest.raises(InputError, match="mode"):
        OrderIdentity("yolo", "DU1", 1, "r")


def test_planner_keys_intents_by_identity_and_live_keeps_its_run_id_keys() -> None:
    ident = OrderIdentity("paper", "DU1234567", 756733, "run7")
    planned = plan_from_targets("SPY", ident, [BAR, BAR + timedelta(minutes=5)], [1, 0], quantity_per_unit=10)
    assert [i.order_ref for i in planned.intents] == [ident.key(BAR), ident.key(BAR + timedelta(minutes=5))]
    assert rebalance("SPY", ident, BAR, 10, 0).order_ref == ident.key(BAR)
    assert rebalance("SPY", "live-x", BAR, 10, 0).order_ref == "live-x:20240304T143500Z"  # the live trader's


# ---------------------------------------------------------------------------------------------- the store


def _fill(ref: str, mode: str, account: str, exec_id: str) -> Fill:
    return Fill(exec_id, ref, "SPY", Side.BUY, 10, 100.0, 1.0, BAR, mode, account=account)


def test_old_format_executions_count_only_for_their_mode_account_and_instrument(db_url: str) -> None:
    engine = open_engine(db_url)
    init_db(engine)
    ident = OrderIdentity("paper", "DU1234567", 756733, "csv-0123456789ab", "csv-positions.csv")
    old = ident.legacy(BAR)
    record_fills(engine, [_fill(old, "simulate", "SIM", "sim:old")], 756733)  # another mode
    record_fills(engine, [_fill(old, "paper", "DU7654321", "e-acct")], 756733)  # another account
    record_fills(engine, [_fill(old, "paper", "DU1234567", "e-conid")], 320227571)  # another instrument
    intents = plan_from_targets("SPY", ident, [BAR], [1], 10).intents
    assert stored_placed(engine, intents, ident) == set()
    record_fills(engine, [_fill(old, "paper", "DU1234567", "e-mine")], 756733)
    assert stored_placed(engine, intents, ident) == {ident.key(BAR)}
    live = OrderIdentity("live", "DU1234567", 756733, ident.run_id, ident.legacy_run_id)
    assert stored_placed(engine, plan_from_targets("SPY", live, [BAR], [1], 10).intents, live) == set()
    assert refs_with_executions(engine, [old], "paper", 756733, "DU1234567") == {old}
    assert refs_with_executions(engine, None, "simulate") == {old}


# ---------------------------------------------------------------------------------------------- positions CSVs

PER_BAR = "ts,position,signal\n2024-03-04T14:30:00Z,0,\n2024-03-04T14:35:00Z,1,entry\n"


def test_date_and_time_columns_are_combined_under_the_time_rule() -> None:
    text = "date,time,position\n2024-03-04,09:30:00,0\n2024-03-04,09:35:00,1\n"
    with pytest.raises(InputError, match=r"'date \+ time' has no time zone.*--tz"):
        read_positions_csv(io.StringIO(text))
    t = read_positions_csv(io.StringIO(text), NEW_YORK)
    assert [f"{x:%H:%MZ}" for x in t.ts] == ["14:30Z", "14:35Z"] and t.position.tolist() == [0.0, 1.0]
    zoned = read_positions_csv(io.StringIO("Date,Time,Position\n20240304,14:35:00Z,1\n"))
    assert zoned.ts == [BAR]


@pytest.mark.parametrize("column", ["timestamp", "datetime", "time", "TS"])
def test_other_names_of_the_time_column(column: str) -> None:
    t = read_positions_csv(io.StringIO(f"{column},position\n2024-03-04T14:35:00Z,1\n"))
    assert t.ts == [BAR] and t.position.tolist() == [1.0]


def test_a_date_column_alone_names_daily_bars() -> None:
    t = read_positions_csv(io.StringIO("date,position\n2024-03-04,1\n2024-03-05,0\n"))
    assert t.ts == [datetime(2024, 3, 4, tzinfo=timezone.utc), datetime(2024, 3, 5, tzinfo=timezone.utc)]


def test_a_numeric_signal_column_is_the_target_without_position() -> None:
    t = read_positions_csv(io.StringIO("ts,signal\n2024-03-04T14:30:00Z,0\n2024-03-04T14:35:00Z,-1\n"))
    assert t.position.tolist() == [0.0, -1.0] and t.reason == [None, None]
    with pytest.raises(InputError, match="'signal' must hold a number"):
        read_positions_csv(io.StringIO("ts,signal\n2024-03-04T14:30:00Z,entry\n"))
    both = read_positions_csv(io.StringIO(PER_BAR))  # with position, signal stays the reason
    assert both.position.tolist() == [0.0, 1.0] and both.reason == [None, "entry"]


def test_symbol_column_splits_the_file_per_instrument() -> None:
    text = ("date,time,symbol,position\n2024-03-04,14:30:00Z,SPY,0\n2024-03-04,14:30:00Z,eurusd,1\n"
            "2024-03-04,14:35:00Z,SPY,1\n2024-03-04,14:35:00Z,EUR.USD,0\n")
    found = read_positions_file(io.StringIO(text))
    assert list(found.by_symbol) == ["SPY", "EUR.USD"]
    assert found.by_symbol["SPY"].position.tolist() == [0.0, 1.0]
    assert found.by_symbol["EUR.USD"].position.tolist() == [1.0, 0.0]
    with pytest.raises(InputError, match="holds 2 symbols"):
        read_positions_csv(io.StringIO(text))
    with pytest.raises(InputError, match="row 3: empty symbol"):
        read_positions_file(io.StringIO("ts,symbol,position\n2024-03-04T14:30:00Z,SPY,0\n2024-03-04T14:35:00Z,,1\n"))


def test_round_trips_with_a_symbol_column() -> None:
    text = ("symbol,side,entry_time,entry_price,exit_time,exit_price,bars_held,reason\n"
            "SPY,long,2024-03-04T14:35:00Z,101.5,2024-03-04T14:45:00Z,103.5,2,exit\n"
            "QQQ,short,2024-03-04T14:35:00Z,400,2024-03-04T14:45:00Z,399,2,exit\n")
    found = read_positions_file(io.StringIO(text)).by_symbol
    assert found["SPY"].position.tolist() == [1.0, 0.0] and found["QQQ"].position.tolist() == [-1.0, 0.0]


def test_run_id_comes_from_content_and_instrument_never_the_name(tmp_path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for folder in (a, b, c):
        folder.mkdir()
    (a / "positions.csv").write_text(PER_BAR)
    (b / "renamed.csv").write_text(PER_BAR.replace("\n", "\r\n").replace(",", " , "))  # same content
    (c / "positions.csv").write_text(PER_BAR.replace("entry", "entry2"))  # same name, other content
    [spy_a] = positions_runs(str(a / "positions.csv"), None, SPY)
    [spy_b] = positions_runs(str(b / "renamed.csv"), None, SPY)
    [qqq_a] = positions_runs(str(a / "positions.csv"), None, Instrument.parse("QQQ"))
    [spy_c] = positions_runs(str(c / "positions.csv"), None, SPY)
    assert spy_a.run_id == spy_b.run_id and len({spy_a.run_id, qqq_a.run_id, spy_c.run_id}) == 3
    assert spy_a.run_id.startswith("csv-") and len(spy_a.run_id) == 16
    assert (spy_a.legacy_run_id, spy_b.legacy_run_id) == ("csv-positions.csv", "csv-renamed.csv")


def test_file_symbols_and_symbol_option(tmp_path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("ts,symbol,position\n2024-03-04T14:30:00Z,SPY,0\n2024-03-04T14:35:00Z,SPY,1\n")
    assert [r.symbol for r in positions_runs(str(path), None, None)] == ["SPY"]
    assert [r.symbol for r in positions_runs(str(path), None, SPY)] == ["SPY"]
    with pytest.raises(InputError, match="is for SPY, not --symbol QQQ"):
        positions_runs(str(path), None, Instrument.parse("QQQ"))
    bare = tmp_path / "bare.csv"
    bare.write_text(PER_BAR)
    with pytest.raises(InputError, match="has no symbol column: give --symbol"):
        positions_runs(str(bare), None, None)
