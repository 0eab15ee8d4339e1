"""IB's small-bar pacing rules as the sim enforces them (pure: injected clock, no sockets, no sleeps)."""

from __future__ import annotations

import pytest

from ibkrtool.sim.history import SimRequestError
from ibkrtool.sim.pacing import PACING_TEXT, HistoricalRequestKey, PacingEnforcer, is_small_bar


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def key(conid: int = 756733, what: str = "TRADES", bar: str = "1 secs", end: str = "20261120-15:00:00",
        duration: str = "1800 S") -> HistoricalRequestKey:
    return HistoricalRequestKey(conid, "SMART", what, bar, duration, end, 1)


def refused(p: PacingEnforcer, k: HistoricalRequestKey, kind: str = "history") -> bool:
    try:
        p.admit(k, kind)
    except SimRequestError as exc:
        assert exc.code == 162
        assert exc.text == "Historical Market Data Service error message:Historical data request pacing violation"
        return True
    return False


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_identical_request_within_15_s_is_refused_and_allowed_after(clock: FakeClock) -> None:
    p = PacingEnforcer(clock=clock)
    assert not refused(p, key())
    clock.advance(14.9)
    assert refused(p, key())
    clock.advance(0.1)  # 15 s after the first (the refused one was not recorded)
    assert not refused(p, key())
    assert p.violations == 1


def test_different_end_is_not_identical(clock: FakeClock) -> None:
    p = PacingEnforcer(clock=clock)
    p.admit(key(end="20261120-15:00:00"))
    p.admit(key(end="20261120-15:30:00"))
    assert p.violations == 0


def test_six_requests_same_contract_and_type_within_2_s(clock: FakeClock) -> None:
    p = PacingEnforcer(clock=clock)
    for i in range(5):
        assert not refused(p, key(end=f"20261120-15:0{i}:00"))
        clock.advance(0.3)
    assert refused(p, key(end="20261120-15:09:00"))  # the 6th within 2 s
    assert not refused(p, key(what="MIDPOINT", end="20261120-15:09:00"))  # other tick type: own group
    assert not refused(p, key(conid=320227571, end="20261120-15:09:00"))  # other contract
    clock.advance(2.0 - 1.5 + 0.01)  # the first of the five is now 2 s old
    assert not refused(p, key(end="20261120-15:08:00"))


def test_more_than_60_in_ten_minutes(clock: FakeClock) -> None:
    p = PacingEnforcer(clock=clock)
    for i in range(60):
        assert not refused(p, key(conid=i + 1))
        clock.advance(9.0)  # 60 requests over 540 s
    assert refused(p, key(conid=999))
    clock.advance(600 - 540 + 0.01)  # the first request left the window
    assert not refused(p, key(conid=999))
    assert refused(p, key(conid=1000))


def test_bid_ask_counts_twice(clock: FakeClock) -> None:
    p = PacingEnforcer(clock=clock)
    for i in range(30):
        p.admit(key(conid=i + 1, what="BID_ASK"))
        clock.advance(1.0)
    assert refused(p, key(conid=500))  # 30 BID_ASK = 60 counted
    q = PacingEnforcer(clock=clock)
    for i in range(2):
        q.admit(key(what="BID_ASK", end=f"20261120-15:0{i}:00"))
    assert refused(q, key(what="BID_ASK", end="20261120-15:05:00"))  # 4 counted + 2 = 6 in 2 s
    assert not refused(q, key(what="BID", end="20261120-15:05:00"))


def test_scale_shrinks_every_window(clock: FakeClock) -> None:
    p = PacingEnforcer(scale=0.01, clock=clock)
    for i in range(60):
        p.admit(key(conid=i + 1))
    assert refused(p, key(conid=100))
    clock.advance(6.0)  # 10 minutes x 0.01
    assert not refused(p, key(conid=100))
    p.admit(key(conid=200, end="x"))
    clock.advance(0.14)
    assert refused(p, key(conid=200, end="x"))  # 15 s x 0.01 = 0.15 s
    clock.advance(0.02)
    assert not refused(p, key(conid=200, end="x"))


def test_large_bars_are_not_paced_but_head_timestamps_are(clock: FakeClock) -> None:
    p = PacingEnforcer(clock=clock)
    for _ in range(100):
        p.admit(key(bar="1 min"))
        p.admit(key(bar="1 day"))
    assert p.violations == 0
    for i in range(5):
        p.admit(key(bar="", end=f"head-{i}"), "head_timestamp")
    assert refused(p, key(bar="", end="head-9"), "head_timestamp")


def test_small_bar_boundary() -> None:
    assert is_small_bar("30 secs") and is_small_bar("1 secs") and is_small_bar("5 secs")
    assert not is_small_bar("1 min") and not is_small_bar("1 day") and not is_small_bar("1W")


def test_refused_requests_do_not_consume_budget(clock: FakeClock) -> None:
    p = PacingEnforcer(clock=clock)
    for i in range(60):
        p.admit(key(conid=i + 1))
    for _ in range(10):
        assert refused(p, key(conid=777))
    assert p.violations == 10
    clock.advance(600.0)
    for i in range(60):  # a full fresh budget: the 10 refusals were not recorded
        assert not refused(p, key(conid=1000 + i))
    assert PACING_TEXT.endswith("pacing violation")
