"""Indicators: hand-checked values on tiny series, no look-ahead, and TTR parity through a real Rscript."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from ibkrtool.indicators import aroon, ema, sma, swing_pivots


def test_sma_hand_values():
    out = sma([1, 2, 3, 4, 5], 3)
    assert np.isnan(out[:2]).all()
    np.testing.assert_allclose(out[2:], [2, 3, 4])


def test_ema_seeds_with_the_simple_mean_then_uses_two_over_n_plus_one():
    out = ema([np.nan, np.nan, 1, 2, 3, 4, 5], 3)  # TTR: NA NA NA NA 2 3 4
    assert np.isnan(out[:4]).all()
    np.testing.assert_allclose(out[4:], [2, 3, 4])


def test_ema_wilder_uses_one_over_n():
    out = ema([1, 2, 3, 4, 5, 6], 3, wilder=True)  # TTR: NA NA 2 2.666667 3.444444 4.296296
    np.testing.assert_allclose(out[2:], [2, 8 / 3, 31 / 9, 116 / 27])


def test_ema_refuses_a_nan_after_the_start():
    with pytest.raises(ValueError, match="non-leading"):
        ema([1, np.nan, 2, 3], 2)


def test_ema_long_series_matches_the_plain_recursion():
    x = np.random.default_rng(1).normal(100, 1, 20_000)
    for n in (2, 10, 200):
        a = 2 / (n + 1)
        ref = np.full(x.size, np.nan)
        ref[n - 1] = sum(v / n for v in x[:n])
        for i in range(n, x.size):
            ref[i] = x[i] * a + ref[i - 1] * (1 - a)
        np.testing.assert_allclose(ema(x, n), ref, rtol=0, atol=1e-9)


def test_aroon_hand_values_match_ttr():
    x = [1, 2, 2, 1, 1, 3, 3, 0, 0, 0, 0]
    result = aroon(x, x, 3)  # values printed by TTR::aroon(x, 3)
    third = 100 / 3
    np.testing.assert_allclose(result.up[2:], [100, 2 * third, third, 100, 100, 2 * third, third, 0, 100])
    np.testing.assert_allclose(result.down[2:], [third, 100, 100, 2 * third, third, 100, 100, 100, 100])
    np.testing.assert_allclose(result.oscillator, result.up - result.down)


def test_aroon_keeps_ttrs_one_leading_nan_quirk():
    x = [np.nan, 1, 2, 3, 2, 1]
    result = aroon(x, x, 2)  # TTR: NA NA 0 100 50 0 (up), NA NA 0 0 100 100 (down)
    np.testing.assert_allclose(result.up[2:], [0, 100, 50, 0])
    np.testing.assert_allclose(result.down[2:], [0, 0, 100, 100])


def test_swing_pivots_hand_values_and_confirmation_delay():
    high = np.array([1, 2, 5, 3, 2, 4, 6, 4, 3, 3, 2], dtype=float)
    low = high - 1
    piv = swing_pivots(high, low, 2)
    assert np.flatnonzero(~np.isnan(piv.pivot_high)).tolist() == [2, 6]
    assert np.flatnonzero(~np.isnan(piv.pivot_low)).tolist() == [4]
    # the pivot high at bar 2 is known at bar 4, the one at bar 6 at bar 8
    np.testing.assert_array_equal(piv.swing_high, [np.nan] * 4 + [5, 5, 5, 5, 6, 6, 6])
    np.testing.assert_array_equal(piv.swing_low, [np.nan] * 6 + [1] * 5)


def test_swing_pivots_need_strictly_greater_highs():
    high = np.array([1, 3, 3, 1, 1], dtype=float)
    assert np.isnan(swing_pivots(high, high, 1).pivot_high).all()


@pytest.mark.parametrize("fn", ["sma", "ema", "aroon", "pivots"])
def test_no_look_ahead(fn):
    rng = np.random.default_rng(7)
    close = 100 + rng.normal(0, 1, 400).cumsum()
    high, low = close + 0.5, close - 0.5

    def run(h, lo, c):
        if fn == "sma":
            return [sma(c, 20)]
        if fn == "ema":
            return [ema(c, 20)]
        if fn == "aroon":
            r = aroon(h, lo, 14)
            return [r.up, r.down]
        p = swing_pivots(h, lo, 5)
        return [p.swing_high, p.swing_low]

    full = run(high, low, close)
    for cut in (50, 123, 399):
        for a, b in zip(run(high[:cut], low[:cut], close[:cut]), full, strict=True):
            np.testing.assert_array_equal(a, b[:cut])


TTR_SCRIPT = r"""
suppressMessages(library(TTR))
d <- read.csv(file("stdin"))
out <- data.frame(
  sma50 = SMA(d$close, 50), ema20 = EMA(d$close, 20), ema3 = EMA(d$close, 3), wilder14 = EMA(d$close, 14, wilder=TRUE)
)
a <- aroon(cbind(d$high, d$low), n = 25)
out$up <- a[, "aroonUp"]; out$dn <- a[, "aroonDn"]; out$osc <- a[, "oscillator"]
write.csv(out, stdout(), row.names = FALSE, na = "NaN")
"""


@pytest.mark.r
def test_matches_ttr_on_thousands_of_bars(rscript):
    import io

    import pandas as pd

    rng = np.random.default_rng(42)
    close = np.round(100 + rng.normal(0, 0.2, 5000).cumsum(), 2)  # rounded to ticks so Aroon ties happen
    high = np.round(close + rng.uniform(0, 0.3, close.size), 2)
    low = np.round(close - rng.uniform(0, 0.3, close.size), 2)
    csv = pd.DataFrame({"high": high, "low": low, "close": close}).to_csv(index=False, float_format="%.17g")
    proc = subprocess.run([rscript, "-e", TTR_SCRIPT], input=csv, capture_output=True, text=True, check=True)
    ttr = pd.read_csv(io.StringIO(proc.stdout))
    a = aroon(high, low, 25)
    ours = {
        "sma50": sma(close, 50), "ema20": ema(close, 20), "ema3": ema(close, 3),
        "wilder14": ema(close, 14, wilder=True), "up": a.up, "dn": a.down, "osc": a.oscillator,
    }
    for name, values in ours.items():
        np.testing.assert_allclose(values, ttr[name].to_numpy(), rtol=0, atol=1e-9, err_msg=name)
        assert np.isnan(values).sum() == ttr[name].isna().sum(), name
