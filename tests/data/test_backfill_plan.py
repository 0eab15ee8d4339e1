"""The backfill planner: pure, on the real NYSE/forex calendars, no gateway."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from ibkrtool.data.backfill import parse_bar_size, parse_when, resolve_range
from ibkrtool.errors import InputError
from ibkrtool.ib.chunks import Chunk, pack, plan_series, subtract
from ibkrtool.ib.history import duration_text, end_text
from ibkrtool.model import BarSize, Instrument

UTC = timezone.utc
SPY = Instrument.parse("SPY")
EURUSD = Instrument.parse("EUR.USD")
NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)  # a Sunday


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_default_range_is_last_complete_session_on_a_weekend() -> None:
    lo, hi = resolve_range(SPY, BarSize.parse("1m"), None, None, True, NOW)
    assert (lo, hi) == (t("2026-11-20T14:30"), t("2026-11-20T21:00"))  # Friday's regular session


def test_one_second_rth_session_is_13_requests_of_1800_s() -> None:
    window = (t("2026-11-20T14:30"), t("2026-11-20T21:00"))
    plan = plan_series(SPY, 756733, BarSize.parse("1s"), "TRADES", True, window, [])
    assert len(plan.chunks) == 13
    first = plan.chunks[0].request(plan.bar_size, "TRADES", True)
    assert (first.end, first.duration, first.bar_size) == ("20261120-15:00:00", "1800 S", "1 secs")


def test_closed_days_cost_nothing_and_coverage_is_skipped() -> None:
    # Thanksgiving week: Thursday 2026-11-26 is closed, Friday closes early at 13:00 New York (18:00 UTC)
    lo = resolve_range(SPY, BarSize.parse("1m"), date(2026, 11, 23), date(2026, 11, 27), True, t("2026-12-01T00:00"))
    plan = plan_series(SPY, 1, BarSize.parse("1m"), "TRADES", True, lo, [])
    assert [c.start.date() for c in plan.chunks] == [date(2026, 11, d) for d in (23, 24, 25, 27)]
    assert plan.chunks[-1].end == t("2026-11-27T18:00")
    covered = [(c.start, c.end) for c in plan.chunks]
    assert plan_series(SPY, 1, BarSize.parse("1m"), "TRADES", True, lo, covered).chunks == []
    morning = (t("2026-11-25T14:30"), t("2026-11-25T16:00"))
    partial = plan_series(SPY, 1, BarSize.parse("1m"), "TRADES", True, lo, [*covered[:2], morning])
    assert [(c.start, c.end) for c in partial.chunks] == [(t("2026-11-25T16:00"), t("2026-11-25T21:00")),
                                                           covered[3]]


def test_five_minute_bars_pack_a_week_into_one_request() -> None:
    window = resolve_range(SPY, BarSize.parse("5m"), date(2026, 11, 16), date(2026, 11, 20), True, NOW)
    plan = plan_series(SPY, 1, BarSize.parse("5m"), "TRADES", True, window, [])
    assert len(plan.chunks) == 1 and len(plan.chunks[0].pieces) == 5
    assert plan.chunks[0].request(plan.bar_size, "TRADES", True).duration == "5 D"


def test_forex_sessions_run_17_to_17_new_york() -> None:
    window = resolve_range(EURUSD, BarSize.parse("1m"), date(2026, 11, 16), date(2026, 11, 20), True, NOW)
    plan = plan_series(EURUSD, 2, BarSize.parse("1m"), "MIDPOINT", True, window, [])
    assert len(plan.chunks) == 5
    assert plan.chunks[0].start == t("2026-11-15T22:00") and plan.chunks[-1].end == t("2026-11-20T22:00")


def test_daily_bars_one_day_per_session() -> None:
    window = resolve_range(SPY, BarSize.parse("1d"), date(2026, 1, 1), date(2026, 11, 20), True, NOW)
    plan = plan_series(SPY, 1, BarSize.parse("1d"), "TRADES", True, window, [])
    assert len(plan.chunks) == 1
    assert len(plan.chunks[0].pieces) > 200  # ~226 sessions, none on weekends


def test_subtract_and_pack() -> None:
    a, b = t("2026-11-20T14:30"), t("2026-11-20T21:00")
    assert subtract([(a, b)], [(a - timedelta(hours=1), a + timedelta(hours=1))]) == [(a + timedelta(hours=1), b)]
    assert subtract([(a, b)], [(a + timedelta(hours=1), a + timedelta(hours=2))]) == [
        (a, a + timedelta(hours=1)), (a + timedelta(hours=2), b)]
    chunks = pack("SPY", [(a, b)], timedelta(hours=4))
    assert chunks == [Chunk("SPY", ((a, a + timedelta(hours=4)),)), Chunk("SPY", ((a + timedelta(hours=4), b),))]


@pytest.mark.parametrize(
    ("start", "end", "bar", "fragment"),
    [
        ("2026-11-20", "2026-11-19", "1m", "must be before"),
        ("2026-12-01", "2026-12-02", "1m", "future"),
        ("2025-01-02", "2025-01-03", "1s", "6 months"),
    ],
)
def test_bad_ranges_are_refused(start: str, end: str, bar: str, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        resolve_range(SPY, BarSize.parse(bar), parse_when(start, "--start"), parse_when(end, "--end"), True, NOW)


def test_inputs_are_checked() -> None:
    with pytest.raises(InputError, match="allowed: 1s, 5s"):
        parse_bar_size("7m")
    with pytest.raises(InputError, match="no time zone"):
        parse_when("2026-11-20T14:30", "--start")
    assert parse_when("2026-11-20T09:30-05:00", "--start") == t("2026-11-20T14:30")
    assert parse_bar_size("5 mins") == BarSize.parse("5m")


def test_ib_request_texts() -> None:
    assert duration_text(1800) == "1800 S" and duration_text(86400) == "86400 S" and duration_text(86401) == "2 D"
    assert end_text(t("2026-11-20T15:00")) == "20261120-15:00:00"
