"""Strategies: rules checked against a plain per-bar reference loop, no look-ahead, parameters, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ibkrtool.errors import InputError
from ibkrtool.strategies import get_strategy, list_strategies, parse_param_args, parse_params, round_trips
from ibkrtool.strategies.latch import latch
from tests.strategies.conftest import make_bars


def reference_latch_fresh(le, lx, se, sx):
    pos, state = np.zeros(le.size), 0
    for t in range(le.size):
        prev = state
        if prev == 1:
            if lx[t]:
                state = -1 if se[t] else 0
        elif prev == -1:
            if sx[t]:
                state = 1 if le[t] else 0
        elif le[t]:
            state = 1
        elif se[t]:
            state = -1
        pos[t] = state
    return pos


@pytest.mark.parametrize("seed", range(5))
def test_latch_matches_the_per_bar_loop(seed):
    rng = np.random.default_rng(seed)
    le, lx, se, sx = (rng.random(2000) < p for p in (0.05, 0.1, 0.05, 0.1))
    np.testing.assert_array_equal(latch(le, lx, se, sx), reference_latch_fresh(le, lx, se, sx))
    np.testing.assert_array_equal(latch(le, lx), reference_latch_fresh(le, lx, 0 * le, 0 * lx))


def test_pivot_breakout_by_hand():
    # pivot=1: a pivot high is above its neighbours, confirmed one bar later; ma_period=1 makes the filter close>close
    # false, so use ma_period=2 on a rising series to let it pass.
    close = [10, 12, 11, 11.5, 13, 12.5, 12.8, 11.0, 10.5, 12.0]
    c = np.array(close)
    bars = pd.DataFrame(
        {"open": c, "high": c, "low": c, "close": c},
        index=pd.date_range("2026-01-05 15:00", periods=c.size, freq="1h", tz="UTC", name="ts"),
    )
    strat = get_strategy("pivot-breakout")
    result = strat.run(bars, parse_params(strat, {"pivot": "1", "ma_period": "2"}))
    # pivot high 12 at bar 1 (known at bar 2), pivot low 11 at bar 2 (known at 3); bar 4 closes 13 > 12 and > MA → long
    # pivot high 13 at bar 4, pivot low 12.5 at bar 5 (known at 6); bar 7 closes 11.0 < 12.5 → flat
    assert result.positions.tolist() == [0, 0, 0, 0, 1, 1, 1, 0, 0, 0]
    assert result.signals[4] == "entry:breakout" and result.signals[7] == "exit:trailing-stop"
    assert result.indicators["swing_low"].iloc[6] == 12.5


def reference_pivot_breakout(bars, pivot, ma_period):
    h, lo, c = (bars[k].to_numpy() for k in ("high", "low", "close"))
    pos, state, sh, sl = np.zeros(c.size), 0, np.nan, np.nan
    for t in range(c.size):
        p = t - pivot  # the bar whose pivot status becomes known now
        if p - pivot >= 0:
            if all(h[p] > h[p - k] and h[p] > h[p + k] for k in range(1, pivot + 1)):
                sh = h[p]
            if all(lo[p] < lo[p - k] and lo[p] < lo[p + k] for k in range(1, pivot + 1)):
                sl = lo[p]
        ma = c[t - ma_period + 1 : t + 1].mean() if t >= ma_period - 1 else np.nan
        if state == 0 and c[t] > sh and c[t] - ma > 1e-12 * abs(ma):
            state = 1
        elif state == 1 and c[t] < sl:
            state = 0
        pos[t] = state
    return pos


@pytest.mark.parametrize(("pivot", "ma_period"), [(5, 50), (2, 10), (3, 5)])
def test_pivot_breakout_matches_the_reference_loop(bars, pivot, ma_period):
    strat = get_strategy("pivot-breakout")
    got = strat.run(bars, parse_params(strat, {"pivot": str(pivot), "ma_period": str(ma_period)})).positions
    want = reference_pivot_breakout(bars, pivot, ma_period)
    np.testing.assert_array_equal(got, want)
    assert 5 < np.count_nonzero(np.diff(got)) < len(bars) / 2


def test_ema_aroon_matches_its_rules_per_bar(bars):
    strat = get_strategy("ema-aroon")
    params = parse_params(strat, {"allow_short": "true", "ema_fast": "10", "ema_slow": "30", "aroon_n": "14"})
    result = strat.run(bars, params)
    ind = result.indicators
    f, s, up, dn = (ind[k].to_numpy() for k in ("ema_fast", "ema_slow", "aroon_up", "aroon_down"))
    with np.errstate(invalid="ignore"):
        above, below = f - s > 1e-12 * abs(s), f - s < -1e-12 * abs(s)
        le, se = above & (up >= 70) & (dn <= 30), below & (dn >= 70) & (up <= 30)
        lx, sx = below | (dn > up), above | (up > dn)
    np.testing.assert_array_equal(result.positions, reference_latch_fresh(le, lx, se, sx))
    assert (result.positions == -1).any() and (result.positions == 1).any()
    changed = np.flatnonzero(np.diff(np.concatenate(([0], result.positions))))
    assert all(result.signals[i] is not None for i in changed)
    assert sum(x is not None for x in result.signals) == changed.size


@pytest.mark.parametrize("name", ["pivot-breakout", "ema-aroon"])
def test_no_look_ahead(bars, name):
    strat = get_strategy(name)
    full = strat.run(bars)
    for cut in (400, 1234, 2999):
        part = strat.run(bars.iloc[:cut])
        np.testing.assert_array_equal(part.positions, full.positions[:cut])
        cols = [c for c in part.indicators if not c.startswith("pivot_")]  # pivot bars are for plotting only
        pd.testing.assert_frame_equal(part.indicators[cols], full.indicators[cols].iloc[:cut])


def test_round_trips(bars):
    strat = get_strategy("pivot-breakout")
    result = strat.run(bars)
    trades = round_trips(bars, result.positions, result.signals)
    assert len(trades) == np.count_nonzero(np.diff(np.concatenate(([0], result.positions))) == 1)
    first = trades.iloc[0]
    entry = bars.index.get_loc(first.entry_time)
    assert first.side == "long" and first.entry_price == bars.close.iloc[entry]
    assert first.exit_price == bars.loc[first.exit_time, "close"] and first.reason == "exit:trailing-stop"
    assert first.bars_held == bars.index.get_loc(first.exit_time) - entry


def test_registry_and_params():
    assert [s.name for s in list_strategies()] == ["ema-aroon", "pivot-breakout"]
    strat = get_strategy("pivot-breakout")
    assert parse_params(strat, {"ma-type": "ema", "pivot": "3"}) == strat.params_type(pivot=3, ma_type="ema")
    assert parse_param_args(["pivot=5", "ma_type=sma"]) == {"pivot": "5", "ma_type": "sma"}


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("nope", {}, "unknown strategy 'nope'"),
        ("pivot-breakout", {"pivots": "5"}, "no parameter 'pivots'"),
        ("pivot-breakout", {"pivot": "five"}, "not a valid int"),
        ("pivot-breakout", {"ma_type": "wma"}, "ma_type must be sma or ema"),
        ("ema-aroon", {"allow_short": "maybe"}, "not a valid bool"),
        ("ema-aroon", {"ema_fast": "60"}, "must be shorter"),
    ],
)
def test_bad_parameters_are_one_line_input_errors(name, raw, message):
    with pytest.raises(InputError, match=message):
        parse_params(get_strategy(name), raw)


def test_bad_bars_are_refused():
    strat = get_strategy("pivot-breakout")
    bars = make_bars(200)
    with pytest.raises(InputError, match="lack the column"):
        strat.run(bars.drop(columns="low"))
    with pytest.raises(InputError, match="not sorted"):
        strat.run(bars.iloc[::-1])
    with pytest.raises(InputError, match="duplicated"):
        strat.run(pd.concat([bars, bars.iloc[[5]]]).sort_index())
    broken = bars.copy()
    broken.iloc[7, broken.columns.get_loc("close")] = np.nan
    with pytest.raises(InputError, match="NaN prices"):
        strat.run(broken)
    with pytest.raises(InputError, match="at least 50 bars"):
        strat.run(bars.iloc[:49])
