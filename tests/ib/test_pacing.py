"""The pacing planner against each of IB's rules, on a fake clock (plain numbers: no sleeps)."""

from __future__ import annotations

import pytest

from ibkrtool.ib.pacing import HistRequest, PacingPlanner, PacingRules, SentRequest

NO_MARGIN = PacingRules(margin_fraction=0.0, margin_min_s=0.0)


def req(i: int, contract: str = "1@SMART", what: str = "TRADES") -> HistRequest:
    return HistRequest(contract, what, "1s", f"20261120-{i:08d}", "1800 S", True)


def test_first_request_goes_at_once() -> None:
    planner = PacingPlanner(rules=NO_MARGIN)
    assert planner.earliest(req(0), 100.0) == 100.0


def test_identical_request_waits_15_seconds() -> None:
    planner = PacingPlanner(rules=NO_MARGIN)
    planner.record(req(0), 100.0)
    assert planner.earliest(req(0), 101.0) == pytest.approx(115.0)
    assert planner.earliest(req(1, contract="2@SMART"), 101.0) == 101.0  # different request: no wait


def test_sixth_request_same_contract_within_2_seconds_waits() -> None:
    planner = PacingPlanner(rules=NO_MARGIN)
    for i in range(5):
        planner.record(req(i), 100.0 + 0.1 * i)
    assert planner.earliest(req(5), 100.5) == pytest.approx(102.0)  # 2 s after the first of the five
    # another tick type on the same contract is a different bucket
    assert planner.earliest(req(5, what="MIDPOINT"), 100.5) == 100.5
    assert planner.earliest(req(5, contract="2@SMART"), 100.5) == 100.5


def test_sixty_requests_per_ten_minutes() -> None:
    planner = PacingPlanner(rules=NO_MARGIN)
    for i in range(60):
        planner.record(req(i, contract=f"{i}@SMART"), 10.0 * i)
    assert planner.earliest(req(60, contract="x@SMART"), 595.0) == pytest.approx(600.0)
    planner.record(req(60, contract="x@SMART"), 600.0)
    assert planner.earliest(req(61, contract="y@SMART"), 600.0) == pytest.approx(610.0)


def test_bid_ask_counts_twice() -> None:
    planner = PacingPlanner(rules=NO_MARGIN)
    for i in range(59):
        planner.record(req(i, contract=f"{i}@SMART"), float(i))
    assert planner.earliest(req(99, contract="a@SMART"), 60.0) == 60.0
    assert planner.earliest(req(99, contract="a@SMART", what="BID_ASK"), 60.0) == pytest.approx(600.0)
    burst = PacingPlanner(rules=NO_MARGIN)
    for i in range(2):
        burst.record(req(i, what="BID_ASK"), 0.0)  # weight 4 in the 2 s bucket
    assert burst.earliest(req(3, what="BID_ASK"), 0.1) == pytest.approx(2.0)  # 4 + 2 > 5


def test_scale_shrinks_every_window() -> None:
    planner = PacingPlanner(scale=0.01, rules=NO_MARGIN)
    planner.record(req(0), 0.0)
    assert planner.earliest(req(0), 0.0) == pytest.approx(0.15)
    unthrottled = PacingRules(margin_fraction=0.0, margin_min_s=0.0, max_per_s=1000)
    times = PacingPlanner(scale=0.01, rules=unthrottled).plan([req(i, contract=f"{i}@S") for i in range(61)], 0.0)
    assert times[59] == 0.0 and times[60] == pytest.approx(6.0)


def test_margin_is_added_to_each_window() -> None:
    planner = PacingPlanner(rules=PacingRules(margin_fraction=0.01, margin_min_s=0.5))
    planner.record(req(0), 0.0)
    assert planner.earliest(req(0), 0.0) == pytest.approx(15.5)


def test_history_survives_restart() -> None:
    first = PacingPlanner(rules=NO_MARGIN)
    first.plan([req(i) for i in range(60)], 0.0)
    second = PacingPlanner(rules=NO_MARGIN, history=first.sent)
    assert second.earliest(req(100, contract="z@SMART"), 30.0) == pytest.approx(600.0)
    assert PacingPlanner(rules=NO_MARGIN).earliest(req(100, contract="z@SMART"), 30.0) == 30.0


def test_plan_obeys_all_rules_on_a_long_sequence() -> None:
    """Property check: a brute-force audit of the planned times finds no window with too many requests."""
    rules = NO_MARGIN
    seq = [req(i, what="BID_ASK" if i % 7 == 0 else "TRADES") for i in range(200)] + [req(3)] * 3
    times = PacingPlanner(rules=rules).plan(seq, 0.0)
    sent = [SentRequest(t, r) for t, r in zip(times, seq, strict=True)]
    for s in sent:
        window = [x for x in sent if s.at - 600 < x.at <= s.at]
        assert sum(x.request.weight for x in window) <= 60
        burst = [x for x in window if x.request.burst_key == s.request.burst_key and s.at - 2 < x.at]
        assert sum(x.request.weight for x in burst) <= 5
        same = [x for x in sent if x.request == s.request and x is not s and 0 <= s.at - x.at < 15]
        assert not same
    assert times == sorted(times)
    # tight: within the first window the burst rule alone decides the pace
    assert times[1:6] == [0.0] * 5 and times[6] == pytest.approx(2.0)  # req 0 is BID_ASK: its own bucket


def test_message_rate_is_not_scaled() -> None:
    planner = PacingPlanner(scale=0.01, rules=NO_MARGIN)
    times = planner.plan([req(i, contract=f"{i}@S") for i in range(41)], 0.0)
    assert times[39] == 0.0 and times[40] == pytest.approx(1.0)


def test_rebooking_at_the_answer_time_delays_the_window() -> None:
    planner = PacingPlanner(rules=NO_MARGIN)
    for i in range(60):
        planner.record(req(i, contract=f"{i}@S"), 0.0)
    planner.rebook(req(0, contract="0@S"), 0.0, 3.0)  # the server may have stamped it as late as its answer
    assert planner.earliest(req(99, contract="z@S"), 1.0) == pytest.approx(600.0)
    planner.rebook(req(1, contract="1@S"), 0.0, 2.0)
    assert planner.earliest(req(99, contract="z@S"), 1.0) == pytest.approx(600.0)  # oldest is now the others at 0


def test_bars_over_30_seconds_are_not_paced_except_identical_repeats() -> None:
    planner = PacingPlanner(rules=NO_MARGIN)
    big = [HistRequest("1@SMART", "TRADES", "1 min", f"e{i}", "1 D", paced=False) for i in range(100)]
    times = planner.plan(big[:39], 0.0)
    assert times[-1] == 0.0 and planner.earliest(req(0), 0.0) == 0.0  # they count for nothing
    assert planner.earliest(big[0], 1.0) == pytest.approx(15.0)
