"""Today's P&L of one instrument from its fills, pure. Money in the quote currency."""

from __future__ import annotations

from collections.abc import Sequence

from ibkrtool.model.order import Fill


def daily_pnl(fills: Sequence[Fill], position: float, last_price: float, start_price: float) -> float:
    """Realised + unrealised P&L since the day started: today's ``fills`` (cash flows and commissions), the
    ``position`` now marked at ``last_price``, and the position held at the start of the day (``position`` minus
    today's signed fills) marked at ``start_price`` (the previous session's last close)."""
    traded = sum(f.side.sign * f.quantity for f in fills)
    cash = sum(-f.side.sign * f.quantity * f.price - f.commission for f in fills)
    start_position = position - traded
    return cash + position * last_price - start_position * start_price
