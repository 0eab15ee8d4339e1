from datetime import datetime, timedelta, timezone

import pytest

from ibkrtool.errors import InputError
from ibkrtool.execution.planner import FOREX_LOTS, plan_from_targets, rebalance, unplaced
from ibkrtool.model.order import Side

T0 = datetime(2026, 11, 20, 14, 30, tzinfo=timezone.utc)
TS = [T0 + timedelta(minutes=5 * i) for i in range(8)]


def test_one_intent_per_change_with_idempotency_keys() -> None:
    planned = plan_from_targets("SPY", "run7", TS, [0, 0, 1, 1, 1, 0, -1, -1], quantity_per_unit=100,
                                reasons=[None, None, "entry:breakout", None, None, "exit:stop", "entry:short", None])
    sides = [(i.side, i.quantity, i.target) for i in planned.intents]
    assert sides == [(Side.BUY, 100, 100), (Side.SELL, 100, 0), (Side.SELL, 100, -100)]
    assert [i.order_ref for i in planned.intents] == [
        "run7:20261120T144000Z", "run7:20261120T145500Z", "run7:20261120T150000Z",
    ]
    assert [i.reason for i in planned.intents] == ["entry:breakout", "exit:stop", "entry:short"]
    assert planned.skipped == []


def test_start_position_is_respected() -> None:
    planned = plan_from_targets("SPY", "r", TS[:3], [1, 1, 0], quantity_per_unit=10, start_position=10)
    assert [(i.side, i.quantity) for i in planned.intents] == [(Side.SELL, 10)]


def test_forex_lots_round_down_and_skip_below_minimum() -> None:
    planned = plan_from_targets("EUR.USD", "r", TS[:3], [0.5, 1, 0], quantity_per_unit=25_555, lots=FOREX_LOTS)
    # 0.5 × 25,555 = 12,777.5 → 12,000 (below the 20,000 minimum: skipped); 1 × 25,555 → 25,000
    assert [(i.side, i.quantity) for i in planned.intents] == [(Side.BUY, 25_000), (Side.SELL, 25_000)]
    assert len(planned.skipped) == 1 and "below the minimum" in planned.skipped[0][1]


def test_rerun_places_nothing_already_placed() -> None:
    planned = plan_from_targets("SPY", "run7", TS[:4], [0, 1, 0, 1], quantity_per_unit=1)
    todo, done = unplaced(planned.intents, {planned.intents[0].order_ref})
    assert [i.order_ref for i in done] == [planned.intents[0].order_ref]
    assert len(todo) == 2


def test_rebalance() -> None:
    intent = rebalance("SPY", "live", TS[0], target=100, current=30)
    assert (intent.side, intent.quantity, intent.target) == (Side.BUY, 70, 100)
    assert rebalance("SPY", "live", TS[0], target=30, current=30) is None


@pytest.mark.parametrize(
    ("targets", "qty", "match"),
    [([0, 1], 0, "must be positive"), ([0, float("nan")], 1, "NaN"), ([0], 1, "timestamps but")],
)
def test_bad_input(targets, qty, match) -> None:
    with pytest.raises(InputError, match=match):
        plan_from_targets("SPY", "r", TS[:2], targets, quantity_per_unit=qty)
