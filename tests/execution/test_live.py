"""The live trader against the sim at an accelerated clock (speed 300: a 5-minute bar per real second).

Runs stop on IB's clock (``until``), so the bars a test sees do not depend on the machine's speed."""

from __future__ import annotations

import io
from datetime import timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from ibkrtool.backtest.engine import BacktestConfig, run_backtest
from ibkrtool.backtest.sizing import SizeRule
from ibkrtool.execution.risk import RiskLimits
from ibkrtool.store import tables
from ibkrtool.store.bars import read_bars
from ibkrtool.store.contracts import find_contract
from ibkrtool.store.engine import open_engine
from ibkrtool.store.executions import read_executions
from ibkrtool.store.live_decisions import read_decisions
from ibkrtool.strategies import get_strategy
from tests.execution.live_helpers import FAST, SPEED, fast_config, sim_minutes, trade

pytestmark = pytest.mark.timeout(90)
FIVE_MIN = timedelta(minutes=5)


def test_warm_up_then_trades_only_on_closed_bars(sim_factory, db_url):
    gw = sim_factory(speed=SPEED)
    state, log, engine = trade(gw, db_url, fast_config(until=sim_minutes(40)))
    assert state.stop_reason.startswith("reached --until")
    assert not [d for d in log.of_kind("skip") if "not ready" in d.detail]  # 2 days of warm-up were enough
    conid = find_contract(engine, "SPY").conid
    assert len(read_bars(engine, conid, "5m", "TRADES")) > 80  # warm-up (Thursday + Friday morning) stored
    fills = read_executions(engine, mode="paper")
    assert len(fills) >= 2
    signal_bar = {d.order_ref: d.bar for d in log.of_kind("order")}
    for f in fills:  # every order follows the CLOSE of its signal bar, never a partial bar
        assert f["exec_time"] >= signal_bar[f["order_ref"]] + FIVE_MIN
    assert state.position == sum((1 if f["side"] == "BUY" else -1) * f["quantity"] for f in fills)
    stored = read_decisions(engine, "live-ema-aroon-SPY-5m")  # every decision is in the database too
    assert [d["kind"] for d in stored] == [d.kind for d in log.records]
    signal = next(d for d in stored if d["kind"] == "signal")
    assert {"close", "ema_fast", "ema_slow"} <= set(signal["data"])  # indicator values at the decision


def test_live_fills_match_backtest_next_open(sim_factory, sqlite_url):
    gw = sim_factory(speed=SPEED)
    config = fast_config(until=sim_minutes(75))
    _, log, engine = trade(gw, sqlite_url, config)
    conid = find_contract(engine, "SPY").conid
    bars = read_bars(engine, conid, "5m", "TRADES")
    result = get_strategy("ema-aroon").run(bars, config.params)
    bt = run_backtest(bars, result.positions, BacktestConfig(size=SizeRule("fixed", config.quantity),
                                                             fill="next-open"))
    first_live = log.of_kind("signal")[1].bar  # signal 0 is the start-up evaluation (brings the account to target)
    expected: dict[pd.Timestamp, float] = {}
    for t in bt.trades.itertuples():
        sign = 1.0 if t.side == "long" else -1.0
        expected[t.entry_time] = expected.get(t.entry_time, 0.0) + sign * t.quantity
        if not pd.isna(t.exit_time) and t.exit_reason != "end of data":
            expected[t.exit_time] = expected.get(t.exit_time, 0.0) - sign * t.quantity
    # compare the bars traded live, excluding the last stored bar (the backtest closes everything there)
    window = (first_live + FIVE_MIN, bars.index[-1])
    expected = {ts: q for ts, q in expected.items() if window[0] < ts < window[1] and q}
    actual: dict[pd.Timestamp, float] = {}
    for f in read_executions(engine):
        bar = pd.Timestamp(f["exec_time"]).floor("5min")
        if window[0] < bar < window[1]:
            actual[bar] = actual.get(bar, 0.0) + (1 if f["side"] == "BUY" else -1) * f["quantity"]
    assert len(expected) >= 3
    assert actual == expected, (actual, expected)


def test_kill_switch_stops_new_orders(sim_factory, sqlite_url, tmp_path):
    gw = sim_factory(speed=SPEED)
    kill = tmp_path / "STOP"

    def arm(state):  # the switch is set by the operator once the first fill is in
        if state.fills and not kill.exists():
            kill.write_text("stop")

    _, log, engine = trade(gw, sqlite_url, fast_config(until=sim_minutes(45), kill_file=str(kill)), on_status=arm)
    kinds = [d.kind for d in log.records]
    first_kill = next(i for i, d in enumerate(log.records) if d.kind == "skip" and "kill switch" in d.detail)
    assert "order" not in kinds[first_kill:]
    assert sum(1 for d in log.records[first_kill:] if "kill switch" in d.detail) >= 5  # checked on every bar
    assert len(read_executions(engine)) == len(log.of_kind("fill")) >= 1


def test_disconnect_reconnects_backfills_without_duplicates(sim_factory, sqlite_url):
    gw = sim_factory(speed=SPEED, faults=f"drop-at={sim_minutes(20):%Y-%m-%dT%H:%M:%SZ}")
    config = fast_config(until=sim_minutes(45), backoff_s=2.0)  # 2 s real = 10 sim minutes away: bars are missed
    state, log, engine = trade(gw, sqlite_url, config)
    assert state.reconnects >= 1
    assert log.of_kind("backfill"), [d.detail for d in log.records if d.kind in ("connect", "reconcile")]
    conid = find_contract(engine, "SPY").conid
    bars = read_bars(engine, conid, "5m", "TRADES")
    today = bars[bars.index >= sim_minutes(-30)]
    assert (today.index.to_series().diff().dropna() == FIVE_MIN).all()  # the missed bars were backfilled
    fills = read_executions(engine)
    refs = [f["order_ref"] for f in fills]
    assert len(refs) == len(set(refs))  # one order per signal bar, none repeated after the reconnect
    assert state.position == sum((1 if f["side"] == "BUY" else -1) * f["quantity"] for f in fills)


def test_risk_limits_block_orders(sim_factory, sqlite_url):
    gw = sim_factory(speed=SPEED)
    config = fast_config(until=sim_minutes(30), quantity=100, limits=RiskLimits(max_order_value=50_000))
    _, log, engine = trade(gw, sqlite_url, config)
    # SPY ~ USD 625: a 100-share order (~62k) is over the cap, so nothing is sent and every block is recorded
    assert read_executions(engine) == []
    assert log.of_kind("risk") and all("exceeds the cap" in d.detail for d in log.of_kind("risk"))


def test_connectivity_lost_and_restored_resubscribes(sim_factory, sqlite_url):
    lost_at = f"{sim_minutes(20):%Y-%m-%dT%H:%M:%SZ}"
    gw = sim_factory(speed=SPEED, faults=f"connectivity-lost-at={lost_at}:restored-after=900")
    state, log, engine = trade(gw, sqlite_url, fast_config(until=sim_minutes(45)))
    details = [d.detail for d in log.of_kind("connect")]
    assert any("1100" in d for d in details) and state.reconnects >= 1
    assert log.of_kind("backfill")  # bars of the 15 minutes without data came with the new request
    refs = [f["order_ref"] for f in read_executions(engine)]
    assert len(refs) == len(set(refs))


def test_live_trader_refuses_a_live_account(sim_factory, sqlite_url):
    from ibkrtool.errors import OrderRefused

    gw = sim_factory(speed=SPEED, account="U1234567")
    with pytest.raises(OrderRefused, match="LIVE account"):
        trade(gw, sqlite_url, fast_config(until=sim_minutes(20)))


# ---- the CLI through the front door (app.live): shared options, --until, --decisions, --json -----------------------


def live_cli(*args: str, port: int = 1, db: str = "sqlite:///unused.db"):
    from typer.testing import CliRunner

    from ibkrtool.cli.main import app

    return CliRunner().invoke(app, ["--db", db, "--ib-port", str(port), "--client-id", "11", "live", *args])


def test_live_until_a_bare_date_is_refused(tmp_path):
    result = live_cli("ema-aroon", "-s", "SPY", "--until", "2026-11-20", db=f"sqlite:///{tmp_path / 'x.db'}")
    assert result.exit_code == 3, result.output
    assert "--until 2026-11-20 is a date; give an instant" in result.output and "T16:00:00" in result.output
    assert not (tmp_path / "x.db").exists()  # refused before the database or the gateway was touched


def test_live_until_without_a_zone_needs_tz(tmp_path):
    result = live_cli("ema-aroon", "-s", "SPY", "--until", "2026-11-20T16:00:00", db=f"sqlite:///{tmp_path / 'x.db'}")
    assert result.exit_code == 3 and "--tz" in result.output


def test_live_takes_one_symbol(tmp_path):
    two = live_cli("ema-aroon", "-s", "SPY", "-s", "QQQ", "--duration", "1s", db=f"sqlite:///{tmp_path / 'x.db'}")
    assert two.exit_code == 3 and "live takes one --symbol, got 2 (SPY, QQQ)" in two.output
    none = live_cli("ema-aroon", "--duration", "1s", db=f"sqlite:///{tmp_path / 'x.db'}")
    assert none.exit_code == 3 and "live needs --symbol" in none.output


def test_live_json_summary_and_decisions_appended_across_runs(sim_factory, sqlite_url, tmp_path):
    import csv
    import json

    gw = sim_factory(speed=SPEED)
    decisions = tmp_path / "decisions.csv"
    params = [arg for k, v in FAST.items() for arg in ("-p", f"{k}={v}")]

    def run(until_minutes: float, *extra: str):
        until = f"{sim_minutes(until_minutes):%Y-%m-%dT%H:%M:%SZ}"
        return live_cli("ema-aroon", "-s", "SPY", "-b", "5m", "-n", "10", *params, "--until", until, "--duration",
                        "40s", "--decisions", str(decisions), *extra, port=gw.port, db=sqlite_url)

    first = run(15, "--json")
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)  # stdout holds the JSON alone; the table went to stderr
    assert summary["run_id"] == "live-ema-aroon-SPY-5m" and summary["stopped"].startswith("reached --until")
    assert "┃ item" in first.stderr
    assert f"│ orders / fills      │ {summary['orders']} / {summary['fills']}" in first.stderr
    with decisions.open() as handle:
        before = list(csv.DictReader(handle))
    assert before[0]["kind"] == "reconcile" and before[-1]["kind"] == "stop"
    second = run(25)
    assert second.exit_code == 0, second.output
    assert "┃ item" in second.stdout  # without --json the table is the data on stdout
    text = decisions.read_text()
    assert text.count("time,bar,kind") == 1  # appended: one header, the first run's decisions kept
    after = list(csv.DictReader(io.StringIO(text)))
    assert after[: len(before)] == before and len(after) > len(before)
    engine = open_engine(sqlite_url)
    with engine.connect() as conn:
        runs = conn.execute(sa.select(tables.runs.c.command, tables.runs.c.status)).all()
    assert [tuple(r) for r in runs] == [("live", "ok"), ("live", "ok")]


def test_live_decisions_dash_writes_stdout(sim_factory, sqlite_url):
    import csv

    gw = sim_factory(speed=SPEED)
    params = [arg for k, v in FAST.items() for arg in ("-p", f"{k}={v}")]
    until = f"{sim_minutes(10):%Y-%m-%dT%H:%M:%SZ}"
    result = live_cli("ema-aroon", "-s", "SPY", *params, "--until", until, "--duration", "40s", "--decisions", "-",
                      port=gw.port, db=sqlite_url)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows[0]["kind"] == "reconcile" and rows[-1]["kind"] == "stop"
    assert "┃ item" in result.stderr
    both = live_cli("ema-aroon", "-s", "SPY", "--decisions", "-", "--json", port=gw.port, db=sqlite_url)
    assert both.exit_code == 3 and "both write to stdout" in both.output
