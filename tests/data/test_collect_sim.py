"""``collect`` against an accelerated sim with an injected drop: no missing 5-second or 1-second bars."""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from ibkrtool.data.collect import CollectOptions, CollectReport, SecondBars, parse_duration, run_collect
from ibkrtool.errors import InputError
from ibkrtool.ib.gateway import open_gateway
from ibkrtool.ib.session import ConnectOptions
from ibkrtool.ib.streams import Tick
from ibkrtool.store.bars import read_bars
from ibkrtool.store.engine import open_engine
from ibkrtool.store.migrate import init_db

UTC = timezone.utc
T0 = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def tick(second: int, price: float, size: float = 100) -> Tick:
    return Tick(T0 + timedelta(seconds=second), price, size)


def test_second_bars_drop_the_partial_first_second_and_aggregate_trades() -> None:
    builder = SecondBars(trades=True)
    assert builder.add(tick(0, 10.0)) == []  # partial: subscription began inside this second
    assert builder.first_full == T0 + timedelta(seconds=1)
    assert builder.add(tick(1, 10.0, 100)) == [] and builder.add(tick(1, 11.0, 300)) == []
    assert builder.add(tick(1, 9.5, 100)) == []
    [bar] = builder.add(tick(3, 12.0))
    assert bar[0] == T0 + timedelta(seconds=1)
    assert bar[1:6] == (10.0, 11.0, 9.5, 9.5, 500)
    assert bar[6] == pytest.approx((10 * 100 + 11 * 300 + 9.5 * 100) / 500) and bar[7] == 3.0
    mids = SecondBars(trades=False)
    mids.add(tick(0, 1.0))
    mids.add(tick(1, 1.1))
    [mid] = mids.add(tick(2, 1.2))
    assert mid[1] == 1.1 and math.isnan(mid[5])


def test_duration_parsing() -> None:
    assert parse_duration("90") == 90 and parse_duration("5m") == 300 and parse_duration("2h") == 7200
    with pytest.raises(InputError):
        parse_duration("soon")


def _sim_bars(sim, conid: int, size: str, start: datetime, end: datetime):
    from ibkrtool.sim.contracts import contract_by_conid

    return sim.call(sim.server.market.bars, contract_by_conid(conid), size, start, end, "TRADES", False)


def _assert_no_hole(stored, expected, what: str) -> None:
    starts = [b.start for b in expected]
    assert list(stored.index.to_pydatetime()) == starts, what
    for col, attr in [("open", "open"), ("high", "high"), ("low", "low"), ("close", "close"), ("volume", "volume"),
                      ("bar_count", "count")]:
        np.testing.assert_allclose(stored[col].to_numpy(), [getattr(b, attr) for b in expected], rtol=1e-9,
                                   err_msg=f"{what} {col}")


@pytest.mark.timeout(90)
@pytest.mark.parametrize("fault", ["drop-at={t}", "connectivity-lost-at={t}:restored-after=15"])
def test_collect_with_an_injected_outage_has_no_missing_bars(sim_factory, sqlite_url, fault: str) -> None:
    at = (T0 + timedelta(seconds=40)).isoformat().replace("+00:00", "Z")
    sim = sim_factory(speed=10.0, faults=fault.format(t=at))
    engine = open_engine(sqlite_url)
    init_db(engine)
    options = CollectOptions(("SPY",), duration_s=9.0, pacing_scale=0.01, reconnect_backoff_s=1.5, flush_s=0.3)

    async def collect() -> CollectReport:
        async with open_gateway(ConnectOptions(port=sim.port, timeout_s=3, backoff_s=0.1)) as gateway:
            return await run_collect(gateway, engine, options)

    report = asyncio.run(collect())
    assert len(report.outages) == 1
    repaired = {r["bar_size"]: r["bars"] for r in report.repairs}
    assert repaired["5s"] >= 2 and repaired["1s"] >= 10  # a 1.5 s outage at speed 10 = 15 s of market time
    five = read_bars(engine, 756733, "5s", "TRADES")
    one = read_bars(engine, 756733, "1s", "TRADES")
    assert len(five) >= 12 and len(one) >= 60
    _assert_no_hole(five, _sim_bars(sim, 756733, "5 secs", five.index[0], five.index[-1] + timedelta(seconds=5)),
                    "5s")
    _assert_no_hole(one, _sim_bars(sim, 756733, "1 secs", one.index[0], one.index[-1] + timedelta(seconds=1)), "1s")


@pytest.mark.timeout(60)
def test_collect_cli_writes_csv_and_summary(sim_factory, sqlite_url, tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from ibkrtool.cli.main import app

    sim = sim_factory(speed=10.0)
    out = tmp_path / "bars.csv"
    result = CliRunner().invoke(app, ["--db", sqlite_url, "--ib-port", str(sim.port), "collect", "--symbol", "SPY",
                                      "--duration", "3s", "--output", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    lines = out.read_text().splitlines()
    assert lines[0] == "symbol,bar_size,ts,open,high,low,close,volume,wap,bar_count"
    assert len(lines) - 1 == report["bars_5s"] + report["bars_1s"] and report["bars_5s"] >= 3
    stored = read_bars(open_engine(sqlite_url), 756733, "5s", "TRADES")
    assert len(stored) == report["bars_5s"]


@pytest.mark.timeout(60)
def test_sigterm_is_a_clean_stop_that_flushes_everything(sim_factory, tmp_path) -> None:
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    sim = sim_factory(speed=10.0)
    url = f"sqlite:///{tmp_path}/c.db"
    proc = subprocess.Popen([sys.executable, "-m", "ibkrtool", "--db", url, "--ib-port", str(sim.port), "-q",
                             "collect", "--symbol", "SPY", "--json"], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if len(read_bars(open_engine(url), 756733, "5s", "TRADES")) >= 3:
                break
        except Exception:  # not created yet
            pass
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 143  # stopped cleanly, and the shell reports the signal (128 + SIGTERM)
    report = json.loads(out)
    engine = open_engine(url)
    assert len(read_bars(engine, 756733, "5s", "TRADES")) == report["bars_5s"] >= 3
    assert len(read_bars(engine, 756733, "1s", "TRADES")) == report["bars_1s"]
