"""``app.backtest``: a typed request in, a report out, on a real database (SQLite and PostgreSQL); nothing printed."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from sqlalchemy import func, select

from ibkrtool.app.backtest import (
    BacktestReport,
    BacktestRequest,
    SweepRequest,
    backtest,
    parse_grid,
    parse_size,
    parse_slippage,
    sweep,
    write_plot,
)
from ibkrtool.app.workspace import Workspace
from ibkrtool.errors import InputError, StoreError
from ibkrtool.model import BarSize, Instrument
from ibkrtool.model.when import When
from ibkrtool.settings import Settings
from ibkrtool.store.backtests import load_backtest
from ibkrtool.store.engine import open_engine
from ibkrtool.store.tables import backtest_runs, runs
from tests.backtest.helpers import session_bars
from tests.backtest.test_cli import SPY, counts, seed

SPY_I, QQQ_I = Instrument.parse("SPY"), Instrument.parse("QQQ")


def request(**kwargs) -> BacktestRequest:
    return BacktestRequest(**{"strategy": "pivot-breakout", "instruments": [SPY_I], **kwargs})


def journal(url: str) -> list:
    engine = open_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(select(runs).where(runs.c.command == "backtest")).mappings().all()
    engine.dispose()
    return rows


def naive_csv(path: Path, start: str = "2024-03-04", end: str = "2024-03-15") -> tuple[Path, pd.DataFrame]:
    """A bars CSV whose stamps are UTC wall-clock times written WITHOUT a zone."""
    bars = session_bars(start, end)
    frame = bars.reset_index()[["ts", "open", "high", "low", "close", "volume"]]
    frame["ts"] = frame["ts"].dt.strftime("%Y-%m-%d %H:%M:%S")
    frame.to_csv(path, index=False)
    return path, bars


def test_backtest_returns_a_report_stores_each_run_with_the_journal_and_prints_nothing(db_url: str,
                                                                                        capsys) -> None:
    seed(db_url)
    with Workspace(Settings(db_url=db_url)) as ws:
        report = backtest(ws, request(instruments=[SPY_I, QQQ_I, SPY_I], params={"pivot": "3"},
                                      size=parse_size("equity:0.5"), slippage=parse_slippage("1tick"),
                                      start=When.parse("2024-03-01", "--start"), end=When.parse("2024-04-30", "--end")))
    assert capsys.readouterr() == ("", "")
    assert [run.symbol for run in report.runs] == ["SPY", "QQQ"]  # a repeated symbol runs once
    spy = report.runs[0]
    assert spy.metrics["bars"] == 39 * 78 and spy.report.params["pivot"] == 3 and spy.config.fill == "next-open"
    assert len(report.trades_frame()) == sum(len(run.trades) for run in report.runs)
    assert len(report.equity_frame()) == sum(run.metrics["bars"] for run in report.runs)
    assert report.combined()[-1]["symbol"] == "all (sum of runs)"
    assert report.as_json()[0]["run_id"] == spy.run_id
    assert counts(db_url)[0] == 2
    stored, _ = load_backtest(open_engine(db_url), spy.run_id)
    assert stored["conid"] == SPY and stored["data_start"] == pd.Timestamp("2024-03-04 14:30", tz="UTC")
    [entry] = journal(db_url)
    assert entry["run_id"] == report.journal_id and entry["status"] == "ok"
    assert entry["args"]["symbols"] == ["SPY", "QQQ", "SPY"] and entry["args"]["runs"] == 2
    assert entry["rows_written"] == 2 + len(report.trades_frame())


def test_reading_bars_from_a_database_without_the_schema_is_a_store_error(db_url: str, tmp_path) -> None:
    with Workspace(Settings(db_url=db_url)) as ws, pytest.raises(StoreError, match=r"no ibkrtool schema.*db init"):
        backtest(ws, request())
    assert not (tmp_path / "ibkrtool-test.db").exists()  # SQLite: a reader creates no file


def test_a_csv_into_a_fresh_database_is_stored_and_the_schema_initialised(db_url: str, tmp_path) -> None:
    source, bars = naive_csv(tmp_path / "bars.csv")
    with Workspace(Settings(db_url=db_url)) as ws:
        report = backtest(ws, request(input=str(source), tz=ZoneInfo("UTC")))
    [run] = report.runs
    assert run.run_id is not None and run.metrics["bars"] == len(bars)
    assert counts(db_url)[0] == 1 and journal(db_url)[0]["status"] == "ok"
    stored, _ = load_backtest(open_engine(db_url), run.run_id)
    assert stored["data_start"] == bars.index[0]  # read as UTC, as --tz said: no five-hour shift


def test_csv_stamps_without_a_zone_need_tz(tmp_path) -> None:
    source, bars = naive_csv(tmp_path / "bars.csv")
    with Workspace(Settings(db_url=f"sqlite:///{tmp_path / 'db.sqlite'}")) as ws:
        with pytest.raises(InputError, match=r"no time zone.*--tz"):
            backtest(ws, request(input=str(source), store=False))
        ny = backtest(ws, request(input=str(source), store=False, tz=ZoneInfo("America/New_York")))
    assert ny.runs[0].equity.index[0] == bars.index[0] + pd.Timedelta(hours=5)  # read as New York: as asked
    assert not (tmp_path / "db.sqlite").exists()  # --no-store with --input never touches the database


def test_bad_requests_store_nothing_and_leave_no_journal(sqlite_url: str) -> None:
    seed(sqlite_url)
    with Workspace(Settings(db_url=sqlite_url)) as ws:
        for bad, message in ((request(commission="flat-fee"), "unknown commission model"),
                             (request(params={"nonsense": "1"}), "no parameter"),
                             (request(start=When.parse("2030-01-01", "--start")), "no 5m bars"),
                             (request(plot=Path("chart.png"), plot_start=When.parse("2030-01-01", "--plot-start")),
                              "fewer than 2 bars; widen --plot-start/--plot-end")):
            with pytest.raises(InputError, match=message):
                backtest(ws, bad)
    assert counts(sqlite_url) == (0, 0) and journal(sqlite_url) == []


def test_write_plot_per_symbol_in_a_window(sqlite_url: str, tmp_path) -> None:
    seed(sqlite_url)
    with Workspace(Settings(db_url=sqlite_url)) as ws:
        report = backtest(ws, request(instruments=[SPY_I, QQQ_I], store=False, plot=tmp_path / "c.svg",
                                      plot_start=When.parse("2024-04-01", "--plot-start"),
                                      plot_end=When.parse("2024-04-05", "--plot-end")))
    assert report.charts == [tmp_path / "c-SPY.svg", tmp_path / "c-QQQ.svg"]
    assert all(p.read_text().lstrip().startswith("<?xml") for p in report.charts)
    again = write_plot(BacktestReport(report.runs[:1]), tmp_path / "one.png",
                       When.parse("2024-04-01T13:30:00Z", "--plot-start"), None)
    assert again == [tmp_path / "one.png"] and again[0].read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(InputError, match="--plot-start 2024-04-05 is not before --plot-end 2024-04-01"):
        write_plot(report, tmp_path / "x.png", When.parse("2024-04-05", "--plot-start"),
                   When.parse("2024-04-01", "--plot-end"))


def test_sweep_ranks_reports_progress_and_stores_every_combination(db_url: str) -> None:
    seed(db_url)
    seen: list[tuple[str, int, int]] = []
    with Workspace(Settings(db_url=db_url)) as ws:
        report = sweep(ws, SweepRequest(request(instruments=[SPY_I, QQQ_I], split=0.7),
                                        parse_grid("pivot=3,5 ma_period=10,20"), "return", workers=1),
                       on_progress=lambda *a: seen.append(a))
    assert report.combinations == 4 and report.sort == "total_return_pct" and len(report.table) == 8
    assert list(report.table["symbol"]) == ["SPY"] * 4 + ["QQQ"] * 4
    spy = [r["return%"] for r in report.rows()[:4]]
    assert spy == sorted(spy, reverse=True) and "oos_return%" in report.table.columns
    assert seen[-1] == ("QQQ", 4, 4) and ("SPY", 4, 4) in seen
    assert len(report.run_ids) == 8 and counts(db_url)[0] == 8
    [entry] = journal(db_url)
    assert entry["run_id"] == report.journal_id and entry["args"]["sort"] == "return"
    engine = open_engine(db_url)
    with engine.connect() as conn:
        sweeps = conn.execute(select(func.count()).select_from(backtest_runs)).scalar_one()
    engine.dispose()
    assert sweeps == 8


def test_request_defaults_are_the_cli_defaults() -> None:
    req = BacktestRequest("ema-aroon", [SPY_I])
    assert req.bar_size == BarSize.parse("5m") and str(req.size) == "fixed:100" and req.fill == "next-open"
    assert req.cash == 100_000.0 and req.commission == "auto" and req.store and req.gaps == "warn"
    assert req.journal_args()["symbols"] == ["SPY"]
