"""Order planning: target positions in, order intents out. Pure; no I/O, no clock.

A strategy run gives a target direction per bar (decided at the bar's close). Each change of target is one
signal; its order moves the position from the previous target to the new one. The idempotency key of an intent,
sent as IB's ``orderRef`` so that a rerun of the same run recognises what was already placed, comes from an
``OrderIdentity`` (mode, account, conid, run: see ``execution.identity``); given a bare run id instead (as the live
trader does), it is ``<run id>:<signal bar start as yyyymmddThhmmssZ>``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from ibkrtool.errors import InputError
from ibkrtool.execution.identity import OrderIdentity, legacy_order_ref
from ibkrtool.model.order import OrderIntent, OrderType, Side


@dataclass(frozen=True)
class LotRules:
    """How quantities are rounded. Stocks trade whole shares; IDEALPRO forex in units of the base currency.

    ``lot`` is the increment quantities are rounded to (towards zero); a change smaller than ``min_quantity`` is
    skipped (IB routes forex below IDEALPRO's minimum as odd lots at worse prices, so we refuse to place them).
    """

    lot: float = 1.0
    min_quantity: float = 1.0

    def round(self, quantity: float) -> float:
        return math.copysign(math.floor(abs(quantity) / self.lot + 1e-9) * self.lot, quantity)


STOCK_LOTS = LotRules(lot=1.0, min_quantity=1.0)
# IDEALPRO's minimum order is about USD 25,000 worth; 20,000 base units is the customary floor used here.
FOREX_LOTS = LotRules(lot=1_000.0, min_quantity=20_000.0)


@dataclass(frozen=True)
class PlannedOrders:
    intents: list[OrderIntent]
    skipped: list[tuple[datetime, str]]  # (signal bar, why nothing was ordered)


def order_ref(run: str | OrderIdentity, signal_ts: datetime) -> str:
    """The idempotency key of the order for the signal on the bar starting at ``signal_ts`` (tz-aware): the
    identity's key, or ``<run id>:<bar>`` for a bare run id. Raises ``InputError`` for a naive time."""
    return run.key(signal_ts) if isinstance(run, OrderIdentity) else legacy_order_ref(run, signal_ts)


def _validate(timestamps: Sequence[datetime], targets: np.ndarray) -> None:
    if len(timestamps) != len(targets):
        raise InputError(f"{len(timestamps)} timestamps but {len(targets)} target positions")
    if not np.all(np.isfinite(targets)):
        raise InputError("target positions contain NaN or infinite values")


def plan_from_targets(
    symbol: str,
    run_id: str | OrderIdentity,
    timestamps: Sequence[datetime],
    targets: Sequence[float] | np.ndarray,
    quantity_per_unit: float,
    lots: LotRules = STOCK_LOTS,
    start_position: float = 0.0,
    reasons: Sequence[str | None] | None = None,
) -> PlannedOrders:
    """One market-order intent per change of target, keyed by ``order_ref(run_id, signal bar)``.

    ``targets`` are directions or units (e.g. -1/0/1) scaled by ``quantity_per_unit`` into shares or base units
    and rounded by ``lots``; ``start_position`` is what is held before the first bar. Raises ``InputError`` on
    mismatched lengths, non-finite targets or a non-positive ``quantity_per_unit``.
    """
    if quantity_per_unit <= 0:
        raise InputError(f"quantity per unit must be positive, got {quantity_per_unit}")
    values = np.asarray(targets, dtype=float)
    _validate(timestamps, values)
    intents: list[OrderIntent] = []
    skipped: list[tuple[datetime, str]] = []
    held = start_position
    for i in np.flatnonzero(np.diff(values, prepend=np.nan) != 0):
        target = lots.round(values[i] * quantity_per_unit)
        change = target - held
        if change == 0:
            continue
        if abs(change) < lots.min_quantity:
            skipped.append((timestamps[i], f"change {change:g} is below the minimum order size {lots.min_quantity:g}"))
            continue
        side = Side.BUY if change > 0 else Side.SELL
        reason = reasons[i] if reasons is not None else None
        intents.append(
            OrderIntent(symbol, side, abs(change), OrderType.MARKET, order_ref(run_id, timestamps[i]),
                        timestamps[i], target, reason=reason)
        )
        held = target
    return PlannedOrders(intents, skipped)


def rebalance(symbol: str, run_id: str | OrderIdentity, signal_ts: datetime, target: float, current: float,
              lots: LotRules = STOCK_LOTS) -> OrderIntent | None:
    """The single order that brings ``current`` to ``target`` (already in shares/units), or None if none is due."""
    change = lots.round(target - current)
    if abs(change) < lots.min_quantity:
        return None
    side = Side.BUY if change > 0 else Side.SELL
    return OrderIntent(symbol, side, abs(change), OrderType.MARKET, order_ref(run_id, signal_ts), signal_ts,
                       current + change)


def unplaced(intents: Sequence[OrderIntent], placed_refs: set[str]) -> tuple[list[OrderIntent], list[OrderIntent]]:
    """Split intents into (to place, already placed) by their ``order_ref``: what makes reruns place nothing new."""
    todo = [i for i in intents if i.order_ref not in placed_refs]
    done = [i for i in intents if i.order_ref in placed_refs]
    return todo, done
