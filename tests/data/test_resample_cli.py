"""``ibkrtool resample``: CSV → CSV (stdin/stdout), store → store, and refusals with exit 3 that write nothing."""

from __future__ import annotations

import io
from datetime import date

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ibkrtool.calendars import sessions
from ibkrtool.cli.main import app
from ibkrtool.data.resample import resample_bars
from ibkrtool.model import BAR_COLUMNS, BarSize, Instrument
from ibkrtool.model.contract import Contract
from ibkrtool.store.bars import read_bars, write_bars
from ibkrtool.store.contracts import upsert_contract
from ibkrtool.store.csvio import write_bars_csv
from ibkrtool.store.engine import open_engine
from ibkrtool.store.migrate import init_db

SPY = Contract(conid=756733, symbol="SPY", exchange="SMART", primary_exchange="ARCA", local_symbol="SPY")


def minute_bars(days: int = 2) -> pd.DataFrame:
    """Every minute of two RTH sessions (2026-11-19/20), volume and wap known."""
    spy = Instrument.parse("SPY")
    frames = []
    for s in sessions(spy, date(2026, 11, 19), date(2026, 11, 19) + pd.Timedelta(days=days - 1)):
        frames.append(pd.date_range(s.open, s.close, freq="1min", inclusive="left", name="ts"))
    index = frames[0].append(frames[1:]).as_unit("us")
    rng = np.random.default_rng(5)
    close = np.round(590 + rng.normal(0, 0.05, len(index)).cumsum(), 2)
    return pd.DataFrame({"open": close, "high": close + 0.03, "low": close - 0.02, "close": close,
                         "volume": rng.integers(100, 900, len(index)).astype(float), "wap": close,
                         "bar_count": 7.0}, index=index)


def invoke(*args: str, stdin: str | None = None):
    return CliRunner().invoke(app, list(args), input=stdin)


def test_csv_stdin_to_csv_stdout_marks_partial_bins():
    bars = minute_bars()
    text = io.StringIO()
    write_bars_csv(bars, text)
    result = invoke("resample", "--input", "-", "--symbol", "SPY", "--to", "1h", "-o", "-", stdin=text.getvalue())
    assert result.exit_code == 0, result.output
    got = pd.read_csv(io.StringIO(result.stdout))
    assert list(got.columns) == ["ts", *BAR_COLUMNS, "partial"]
    assert got["ts"].head(2).tolist() == ["2026-11-19T14:30:00Z", "2026-11-19T15:00:00Z"]
    assert got["partial"].tolist() == ([True] + [False] * 6) * 2
    want = resample_bars(bars, BarSize.parse("1m"), BarSize.parse("1h"), sessions(Instrument.parse("SPY"),
                         date(2026, 11, 12), date(2026, 11, 27)))
    np.testing.assert_array_equal(got[list(BAR_COLUMNS)].to_numpy(), want[list(BAR_COLUMNS)].to_numpy())
    assert "2 partial" in result.stderr


def test_drop_partial_and_daily_bins(tmp_path):
    source = tmp_path / "in.csv"
    write_bars_csv(minute_bars(), source)
    result = invoke("resample", "-i", str(source), "-s", "SPY", "--to", "1h", "--drop-partial", "-o", "-")
    assert result.exit_code == 0 and len(pd.read_csv(io.StringIO(result.stdout))) == 12
    daily = invoke("resample", "-i", str(source), "-s", "SPY", "--to", "1d", "-o", "-")
    got = pd.read_csv(io.StringIO(daily.stdout))
    assert got["ts"].tolist() == ["2026-11-19T14:30:00Z", "2026-11-20T14:30:00Z"] and not got["partial"].any()


def test_store_to_store_beside_backfilled_bars(db_url):
    engine = open_engine(db_url)
    init_db(engine)
    upsert_contract(engine, SPY)
    bars = minute_bars()
    write_bars(engine, SPY.conid, "1m", "TRADES", bars)
    result = invoke("--db", db_url, "resample", "--symbol", "SPY", "--bar-size", "1m", "--to", "5m",
                    "--start", "2026-11-19", "--end", "2026-11-20")
    assert result.exit_code == 0, result.output
    stored = read_bars(engine, SPY.conid, "5m", "TRADES")
    assert len(stored) == 2 * 78
    expected = resample_bars(bars, BarSize.parse("1m"), BarSize.parse("5m"), None)
    np.testing.assert_array_equal(stored.index.asi8, expected.index.as_unit("us").asi8)
    np.testing.assert_allclose(stored.to_numpy(), expected[list(BAR_COLUMNS)].to_numpy(), rtol=1e-15)
    again = invoke("--db", db_url, "resample", "--symbol", "SPY", "--bar-size", "1m", "--to", "5m")
    assert again.exit_code == 0 and "0 new" in again.stderr  # idempotent rerun


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bar-size", "2m", "--to", "5m"], "not a whole multiple"),
        (["--to", "1d"], "sessions"),
        (["--bar-size", "5m", "--to", "1m"], "not a whole multiple"),
        (["--to", "5 fortnights"], "not understood"),
    ],
)
def test_refusals_exit_3_and_write_nothing(tmp_path, args, message):
    source, out = tmp_path / "in.csv", tmp_path / "out.csv"
    write_bars_csv(minute_bars(1), source)
    result = invoke("resample", "--input", str(source), "-o", str(out), *args)
    assert result.exit_code == 3, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_csv_without_prices_is_refused(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("ts,volume\n2026-11-19T14:30:00Z,5\n2026-11-19T14:31:00Z,6\n")
    result = invoke("resample", "--input", str(source), "--to", "5m", "-o", "-")
    assert result.exit_code == 3 and result.stdout == ""
