"""Contracts (incl. placeholders), the runs journal and coverage, on both backends."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ibkrtool.errors import InputError
from ibkrtool.model.contract import Contract
from ibkrtool.store import tables as t
from ibkrtool.store.bars import read_bars, write_bars
from ibkrtool.store.contracts import (
    adopt_placeholder,
    find_contract,
    get_contract,
    placeholder_conid,
    placeholder_contract,
    upsert_contract,
)
from ibkrtool.store.coverage import CoverageRange, covered_ranges, merge_ranges
from ibkrtool.store.runs import clean_args, track_run
from tests.store.conftest import make_bars

UTC = timezone.utc
SPY = Contract(conid=756733, symbol="SPY", primary_exchange="ARCA", local_symbol="SPY", trading_class="SPY",
               details={"liquid_hours": "20240102:0930-20240102:1600", "long_name": "SPDR S&P 500 ETF TRUST"})


def test_contract_display() -> None:
    assert SPY.display == "SPY"
    assert Contract(conid=12087792, symbol="EUR", sec_type="CASH", exchange="IDEALPRO").display == "EUR.USD"


def test_upsert_get_find(engine: Engine) -> None:
    upsert_contract(engine, SPY)
    assert get_contract(engine, 756733) == SPY
    assert get_contract(engine, 756733).details["long_name"] == "SPDR S&P 500 ETF TRUST"
    upsert_contract(engine, Contract(conid=756733, symbol="SPY", min_tick=0.005))
    assert get_contract(engine, 756733).min_tick == 0.005
    eur = Contract(conid=12087792, symbol="EUR", sec_type="CASH", exchange="IDEALPRO")
    upsert_contract(engine, eur)
    assert find_contract(engine, "eurusd") == eur
    assert find_contract(engine, "EUR.USD") == eur
    assert find_contract(engine, "QQQ") is None
    with pytest.raises(InputError):
        find_contract(engine, "not a symbol!")


def test_placeholder_is_negative_deterministic_and_loses_to_real(engine: Engine) -> None:
    assert placeholder_conid("SPY") == placeholder_conid("spy") < 0
    assert placeholder_conid("SPY") != placeholder_conid("QQQ")
    upsert_contract(engine, placeholder_contract("SPY"))
    assert find_contract(engine, "SPY").conid == placeholder_conid("SPY")
    upsert_contract(engine, SPY)
    assert find_contract(engine, "SPY").conid == 756733


def test_adopt_placeholder_moves_bars_and_coverage(engine: Engine) -> None:
    ph = placeholder_contract("SPY")
    upsert_contract(engine, ph)
    bars = make_bars(20)
    rng = CoverageRange(bars.index[0].to_pydatetime(), bars.index[-1].to_pydatetime(), source="csv")
    write_bars(engine, ph.conid, "1s", "TRADES", bars, coverage=rng)
    write_bars(engine, SPY.conid, "1s", "TRADES", bars.iloc[:5] + 1)  # IB already delivered these: they stay
    assert adopt_placeholder(engine, SPY) == 15
    back = read_bars(engine, SPY.conid, "1s", "TRADES")
    assert len(back) == 20 and back["close"].iloc[0] == bars["close"].iloc[0] + 1
    assert read_bars(engine, ph.conid, "1s", "TRADES").empty
    assert get_contract(engine, ph.conid) is None
    assert covered_ranges(engine, SPY.conid, "1s", "TRADES") == [(rng.start, rng.end)]


def test_track_run_records_ok_and_failure_without_secrets(engine: Engine) -> None:
    with track_run(engine, "db import bars", {"symbol": "SPY", "db_url": "postgresql://u:pw@h/d",
                                              "source": "postgresql://u:pw@h/d"}) as run:
        run.rows_written = 42
    with pytest.raises(InputError), track_run(engine, "db import bars", {"symbol": "SPY"}):
        raise InputError("bars.csv:3: 'high' is not a number ('x')")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.runs).order_by(t.runs.c.started_at)).all()
    ok, failed = rows
    assert (ok.status, ok.rows_written, ok.error) == ("ok", 42, None)
    assert ok.args == {"symbol": "SPY", "source": "postgresql://u:***@h/d"}
    assert ok.ended_at >= ok.started_at and ok.started_at.tzinfo is not None
    assert (failed.status, failed.error) == ("failed", "bars.csv:3: 'high' is not a number ('x')")


def test_clean_args_drops_secret_keys() -> None:
    assert clean_args({"password": "x", "api_token": "y", "db": "z", "n": 3, "flag": True}) == {"n": 3, "flag": True}


def test_merge_ranges() -> None:
    d = [datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=h) for h in range(10)]
    assert merge_ranges([(d[4], d[6]), (d[0], d[2]), (d[2], d[3]), (d[5], d[7])]) == [(d[0], d[3]), (d[4], d[7])]


def test_coverage_ranges_merge_per_series_including_empty_fetches(engine: Engine) -> None:
    d = [datetime(2024, 1, 2, tzinfo=UTC) + timedelta(hours=h) for h in range(6)]
    empty = make_bars(0)
    write_bars(engine, 1, "1m", "TRADES", empty, coverage=CoverageRange(d[0], d[1], bars_received=0))
    write_bars(engine, 1, "1m", "TRADES", empty, coverage=CoverageRange(d[1], d[2], bars_received=0))
    write_bars(engine, 1, "1m", "TRADES", empty, coverage=CoverageRange(d[4], d[5]))
    write_bars(engine, 1, "1m", "BID", empty, coverage=CoverageRange(d[0], d[5]))
    assert covered_ranges(engine, 1, "1m", "TRADES") == [(d[0], d[2]), (d[4], d[5])]
    assert covered_ranges(engine, 1, "1m", "BID") == [(d[0], d[5])]
