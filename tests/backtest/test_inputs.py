"""Input checks (bars, positions, gaps), option parsing, sweeps and metrics edge cases."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ibkrtool.backtest.costs import parse_commission, parse_slippage
from ibkrtool.backtest.engine import BacktestConfig, run_backtest
from ibkrtool.backtest.runner import Market, backtest_strategy, split_index
from ibkrtool.backtest.sizing import parse_size
from ibkrtool.backtest.stats import compute_metrics
from ibkrtool.backtest.sweep import SweepJob, parse_grid, ranking, run_sweep, sort_key
from ibkrtool.backtest.validate import check_bars, check_positions, find_gaps, gap_warning
from ibkrtool.errors import InputError
from ibkrtool.model import BarSize, Instrument
from ibkrtool.strategies import get_strategy, parse_params
from tests.backtest.helpers import session_bars

SPY = Instrument.parse("SPY")
FIVE = BarSize.parse("5m")


def test_gaps_are_missing_bars_inside_a_session_only() -> None:
    bars = session_bars("2024-03-04", "2024-03-08")  # 5 sessions, overnight breaks are not gaps
    assert find_gaps(bars, SPY, FIVE).size == 0
    holed = bars.drop(bars.index[[10, 11, 100]])
    gaps = find_gaps(holed, SPY, FIVE)
    assert gaps.tolist() == [10, 98]  # positions in the holed frame where bars are missing before
    assert "2 gap(s)" in gap_warning(holed, gaps, "warn")
    with pytest.raises(InputError, match="2 gap"):
        gap_warning(holed, gaps, "refuse")
    # A session that simply starts late (first bars missing) is not a gap.
    assert find_gaps(bars.drop(bars.index[78:80]), SPY, FIVE).size == 0


def test_bars_with_nan_or_no_rows_are_refused() -> None:
    bars = session_bars("2024-03-04", "2024-03-04")
    bad = bars.copy()
    bad.iloc[5, bad.columns.get_loc("close")] = np.nan
    with pytest.raises(InputError, match="missing or non-positive prices, first at 2024-03-04T14:55"):
        check_bars(bad)
    with pytest.raises(InputError, match="no bars"):
        check_bars(bars.iloc[:0])
    naive = bars.copy()
    naive.index = naive.index.tz_localize(None)
    with pytest.raises(InputError, match="time-zone-aware"):
        check_bars(naive)


def test_positions_must_be_directions_one_per_bar() -> None:
    with pytest.raises(InputError, match="one to one"):
        check_positions(np.zeros(3), 4)
    with pytest.raises(InputError, match="-1 \\(short\\), 0 \\(flat\\) or 1"):
        check_positions(np.array([0, 0.5, 1]), 3)
    with pytest.raises(InputError):
        check_positions(np.array([0, np.nan, 1]), 3)


@pytest.mark.parametrize("parse, text", [
    (parse_size, "fixed:-1"), (parse_size, "shares:10"), (parse_size, "equity:abc"),
    (parse_commission, "ib-free"), (parse_commission, "custom:fee=1"), (parse_commission, "custom:pct=-1"),
    (parse_slippage, "3 pips"), (parse_grid, "pivot"), (parse_grid, "pivot=1 pivot=2"), (sort_key, "luck"),
])
def test_bad_option_text_is_one_input_error(parse, text: str) -> None:
    with pytest.raises(InputError):
        parse(text)


def test_option_parsing() -> None:
    assert parse_size("equity:0.5").quantity(100.0, 10_000.0) == 50
    assert parse_size("cash:10000").quantity(100.0, 1.0) == 100
    assert str(parse_slippage("2bps")) == "2bps" and parse_slippage("1tick").per_unit(50.0, 0.01) == 0.01
    assert parse_grid("a=1,2 b=x,y,z")[:2] == [{"a": "1", "b": "x"}, {"a": "1", "b": "y"}]
    assert len(parse_grid("a=1,2 b=x,y,z")) == 6
    assert split_index(100, 0.7) == 70
    with pytest.raises(InputError):
        split_index(3, 0.5)


def test_no_trades_metrics_are_defined() -> None:
    bars = session_bars("2024-03-04", "2024-03-05")
    r = run_backtest(bars, np.zeros(len(bars)), BacktestConfig())
    m = compute_metrics(r.equity, r.trades, r.position, bars, 100_000, 19_656, 300)
    assert m["trades"] == 0 and m["total_return_pct"] == 0 and m["sharpe"] is None and m["win_rate_pct"] is None
    assert m["max_drawdown_pct"] == 0 and m["exposure_pct"] == 0 and m["commissions"] == 0


def test_sweep_in_processes_equals_sweep_in_process() -> None:
    bars = session_bars("2024-03-04", "2024-04-12")
    strategy = get_strategy("pivot-breakout")
    params = [parse_params(strategy, c) for c in parse_grid("pivot=2,3,4 ma_period=10,30")]
    job = SweepJob(strategy, BacktestConfig(), Market(SPY, FIVE), split=0.6)
    one = run_sweep(bars, job, params, workers=1)
    two = run_sweep(bars, job, params, workers=2)
    assert [r.metrics["final_equity"] for r in one] == [r.metrics["final_equity"] for r in two]
    table = ranking(two, sort_key("sharpe"))
    assert len(table) == 6 and {"oos_return%", "oos_sharpe"} <= set(table.columns)
    sharpe = table["sharpe"].dropna().tolist()
    assert sharpe == sorted(sharpe, reverse=True)
    # The split really separates the data: in-sample metrics cover the first 60% of bars only.
    seg = one[0].segments
    assert seg["in_sample"]["bars"] == round(len(bars) * 0.6)
    assert seg["in_sample"]["bars"] + seg["out_of_sample"]["bars"] == len(bars)


def test_backtest_strategy_reports_forex_odd_lots() -> None:
    bars = session_bars("2024-03-04", "2024-03-08")
    bars[["open", "high", "low", "close"]] /= 90.0  # ~1.1, like EUR.USD
    fx = Instrument.parse("EUR.USD")
    strategy = get_strategy("ema-aroon")
    config = BacktestConfig(size=parse_size("fixed:10000"), commission=parse_commission("ib-forex"), is_forex=True,
                            tick=0.00005)
    rep = backtest_strategy(bars, strategy, strategy.defaults(), config, Market(fx, FIVE, "MIDPOINT"))
    assert rep.metrics["trades"] > 0
    assert any("odd lots" in w for w in rep.warnings)
    assert (rep.result.trades["commission"] >= 4.0 - 1e-12).all()  # USD 2 minimum on entry and exit
    assert rep.metrics["periods_per_year"] == 260 * 86400 / 300


def test_store_rows_are_plain_json(tmp_path) -> None:
    from ibkrtool.store.backtests import plain

    assert plain({"a": np.float64("nan"), "b": [np.int64(3)], "c": pd.Timestamp("2024-01-02", tz="UTC")}) == {
        "a": None, "b": [3], "c": "2024-01-02T00:00:00+00:00"}


def test_bars_outside_the_calendar_are_backtested_with_a_warning() -> None:
    from tests.backtest.helpers import random_bars

    bars = random_bars(500, start="1995-01-03 14:30")
    bars = bars.drop(bars.index[50])  # a jump, so the calendar must be consulted
    strategy = get_strategy("pivot-breakout")
    rep = backtest_strategy(bars, strategy, strategy.defaults(), BacktestConfig(), Market(SPY, FIVE))
    assert any(w.startswith("gaps not checked: dates must lie between") for w in rep.warnings)
    with pytest.raises(InputError, match="dates must lie between"):
        backtest_strategy(bars, strategy, strategy.defaults(), BacktestConfig(), Market(SPY, FIVE), gaps="refuse")


@pytest.mark.parametrize("changes, message", [
    ({"gaps": "ignore"}, "--gaps 'ignore' must be warn or refuse"),
    ({"split": 1.0}, "--split must lie strictly between 0 and 1"),
    ({"plot": "chart.jpg"}, "--plot 'chart.jpg'"),
    ({"cash": 0.0}, "starting cash"),
    ({"fill": "vwap"}, "fill 'vwap'"),
    ({"commission": "ib-free"}, "commission"),
    ({"instruments": []}, "give --symbol SYMBOL"),
    ({"input": "bars.csv", "instruments": [SPY, Instrument.parse("QQQ")]}, "--input holds one instrument"),
    ({"plot_start": "2024-03-08", "plot_end": "2024-03-04"}, "--plot-start 2024-03-08 is not before --plot-end"),
])
def test_a_backtest_request_is_checked_before_any_bars_are_read(changes: dict, message: str) -> None:
    from ibkrtool.app.backtest import BacktestRequest
    from ibkrtool.model.when import When

    for key in ("plot_start", "plot_end"):
        if key in changes:
            changes[key] = When.parse(changes[key], "--" + key.replace("_", "-"))
    if "plot" in changes:
        changes["plot"] = Path(changes["plot"])
    request = BacktestRequest(**{"strategy": "pivot-breakout", "instruments": [SPY], **changes})
    with pytest.raises(InputError, match=re.escape(message)):
        request.check()


def test_a_request_names_its_instruments() -> None:
    from ibkrtool.app.backtest import BacktestRequest, SweepRequest

    assert BacktestRequest("ema-aroon", [SPY, SPY]).targets() == [SPY]
    assert [i.display for i in BacktestRequest("ema-aroon", input="-").targets()] == ["INPUT"]
    good = BacktestRequest("ema-aroon", [SPY])
    with pytest.raises(InputError, match="--sort 'luck'"):
        SweepRequest(good, parse_grid("pivot=3,5"), "luck").check()
    with pytest.raises(InputError, match="describe one run"):
        SweepRequest(BacktestRequest("ema-aroon", [SPY], plot=Path("c.png")),
                     parse_grid("pivot=3")).check()
    with pytest.raises(InputError, match="--workers must be at least 1"):
        SweepRequest(good, parse_grid("pivot=3"), workers=0).check()
