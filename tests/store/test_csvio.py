"""Bars CSV: the accepted shapes, and every malformed file refused whole with ``name:line: problem``."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ibkrtool.errors import InputError
from ibkrtool.store.csvio import read_bars_csv, write_bars_csv

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
HEAD = "ts,open,high,low,close,volume\n"
GOOD = "2024-01-02T14:30:00Z,1,2,0.5,1.5,10\n"


def _read(text: str, tz: str | None = None) -> pd.DataFrame:
    return read_bars_csv(io.StringIO(text), tz=tz, name="bars.csv")


@pytest.mark.parametrize(("text", "message"), [
    (HEAD + GOOD + "2024-01-02T14:30:01Z,1,1.2.3,0.5,1.5,10\n", "bars.csv:3: 'high' is not a number ('1.2.3')"),
    ("ts,open,high,low,volume\n2024-01-02T14:30:00Z,1,2,0.5,10\n",
     "bars.csv:1: missing column 'close' (found: ts, open, high, low, volume)"),
    ("open,high,low,close\n1,2,0.5,1.5\n", "bars.csv:1: no time column"),
    (HEAD + GOOD + "2024-01-02 14:30:01,1,2,0.5,1.5,10\n", "bars.csv:3: 'ts' has no time zone ('2024-01-02 14:30:01')"),
    (HEAD + GOOD + GOOD, "bars.csv:3: duplicate timestamp '2024-01-02T14:30:00Z'"),
    (HEAD + "2024-01-02T14:30:05Z,1,2,0.5,1.5,10\n" + GOOD, "bars.csv:3: timestamps out of order: "),
    (HEAD + GOOD + "2024-01-02T14:30:01Z,1,0.4,0.5,1.5,10\n", "bars.csv:3: 'high' 0.4 is below 'low' 0.5"),
    (HEAD + GOOD + "yesterday,1,2,0.5,1.5,10\n", "bars.csv:3: 'ts' is not a timestamp ('yesterday')"),
    (HEAD + GOOD + "2024-01-02T14:30:01Z,,2,0.5,1.5,10\n", "bars.csv:3: 'open' is empty"),
    (HEAD + GOOD + "2024-01-02T14:30:01Z,1,2,0.5,1.5,10,99\n", "bars.csv:3: expected 6 fields, saw 7"),
    ("", "bars.csv: the file is empty"),
])
def test_malformed_file_is_refused_with_line_and_column(text: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        _read(text)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_nonexistent_wall_clock_time_is_refused() -> None:
    text = "date,open,high,low,close,volume\n20240310 02:30:00,1,2,0.5,1.5,10\n"  # skipped by the DST change
    with pytest.raises(InputError, match=r"bars.csv:2: 'date' '20240310 02:30:00' does not exist or is ambiguous"):
        _read(text, tz="America/New_York")


def test_unknown_zone_is_refused() -> None:
    with pytest.raises(InputError, match="unknown time zone 'Mars/Olympus'"):
        _read(HEAD + GOOD, tz="Mars/Olympus")


@pytest.mark.parametrize(("column", "stamp", "tz"), [
    ("ts", "2024-01-02T14:30:00Z", None),
    ("timestamp", "2024-01-02 09:30:00-05:00", None),
    ("DateTime", "2024-01-02T15:30:00+01:00", "Asia/Tokyo"),  # an explicit offset beats --tz
    ("date", "1704205800", None),
    ("Date", "20240102 09:30:00", "America/New_York"),
    ("date", "20240102 09:30:00 US/Eastern", None),
    ("time", "2024-01-02 09:30:00", "America/New_York"),
])
def test_accepted_time_shapes(column: str, stamp: str, tz: str | None) -> None:
    bars = _read(f"{column},Open,HIGH,low,close,volume\n{stamp},1,2,0.5,1.5,10\n", tz)
    assert bars.index[0] == pd.Timestamp("2024-01-02 14:30:00", tz="UTC")
    assert bars.index.name == "ts" and str(bars.index.tz) == "UTC"


def test_daily_ib_dates_with_zone() -> None:
    bars = _read("date,open,high,low,close,volume\n20240102,1,2,0.5,1.5,10\n20240103,1,2,0.5,1.5,10\n",
                 tz="America/New_York")
    assert list(bars.index) == [pd.Timestamp("2024-01-02 05:00", tz="UTC"), pd.Timestamp("2024-01-03 05:00", tz="UTC")]


def test_optional_columns_aliases_and_ib_unknowns() -> None:
    text = ("ts,open,high,low,close,volume,average,barCount\n"
            "2024-01-02T14:30:00Z,1,2,0.5,1.5,10,1.2,3\n2024-01-02T14:30:01Z,1,2,0.5,1.5,-1,-1,-1\n")
    bars = _read(text)
    assert bars.iloc[0].tolist() == [1.0, 2.0, 0.5, 1.5, 10.0, 1.2, 3.0]
    assert np.isnan(bars.iloc[1][["volume", "wap", "bar_count"]].to_numpy()).all()
    no_volume = _read("ts,open,high,low,close\n2024-01-02T14:30:00Z,1,2,0.5,1.5\n")
    assert np.isnan(no_volume["volume"].iloc[0])


def test_fixtures_in_both_shapes_agree() -> None:
    iso = read_bars_csv(FIXTURES / "spy_1s.csv")
    ib = read_bars_csv(FIXTURES / "spy_1s_ib_eastern.csv", tz="America/New_York")
    pd.testing.assert_frame_equal(iso, ib)
    assert len(iso) == 120


def test_write_then_read_round_trips_exactly() -> None:
    bars = read_bars_csv(FIXTURES / "spy_1s.csv")
    bars.iloc[2, bars.columns.get_loc("wap")] = np.nan
    out = io.StringIO()
    assert write_bars_csv(bars, out) == 120
    text = out.getvalue()
    assert text.splitlines()[0] == "ts,open,high,low,close,volume,wap,bar_count"
    assert text.splitlines()[1].startswith("2024-01-02T14:30:00Z,470.0,")
    pd.testing.assert_frame_equal(_read(text), bars)
