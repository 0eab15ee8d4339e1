"""Position sizing: how many shares (or base-currency units) a new trade opens.

Rules (``--size``):

* ``fixed:N``  — N shares / units every trade.
* ``cash:X``   — as many as X (quote currency) buys at the fill price.
* ``equity:F`` — as many as F × current equity buys at the fill price (0 < F; F > 1 is leverage).

Lots: US stocks trade in whole shares (odd lots allowed), so quantities are rounded DOWN to whole shares.
Forex on IDEALPRO trades in units of the BASE currency; quantities are rounded down to whole units. IDEALPRO's
minimum order is USD 25,000 equivalent — smaller "odd lot" orders are accepted by IB but routed away from
IDEALPRO at worse prices, so a backtest with smaller forex trades is flagged with a warning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ibkrtool.errors import InputError

IDEALPRO_MIN_UNITS = 25_000


@dataclass(frozen=True)
class SizeRule:
    """``kind`` is ``fixed``, ``cash`` or ``equity``; ``amount`` its number (shares, quote currency, fraction)."""

    kind: str = "fixed"
    amount: float = 100.0

    def quantity(self, price: float, equity: float) -> float:
        """Whole shares/units to open at ``price`` given current ``equity``; 0 when nothing is affordable."""
        if self.kind == "fixed":
            return float(math.floor(self.amount))
        budget = self.amount if self.kind == "cash" else self.amount * equity
        if budget <= 0 or price <= 0:
            return 0.0
        # A hair of tolerance so that 10000 / 100.0 is 100 shares, not 99 through float rounding.
        return float(math.floor(budget / price * (1 + 1e-12)))

    def __str__(self) -> str:
        return f"{self.kind}:{self.amount:g}"


def parse_size(text: str) -> SizeRule:
    """Parse ``fixed:100``, ``cash:10000`` or ``equity:0.5``. Raises ``InputError`` on anything else."""
    kind, sep, raw = (text or "").strip().lower().partition(":")
    try:
        amount = float(raw)
    except ValueError:
        amount = float("nan")
    if not sep or kind not in {"fixed", "cash", "equity"} or not math.isfinite(amount):
        raise InputError(f"size {text!r} is not understood; use fixed:100, cash:10000 or equity:0.5")
    if amount <= 0 or (kind == "fixed" and math.floor(amount) < 1):
        raise InputError(f"size {text!r} must be positive (fixed needs at least 1 whole share/unit)")
    return SizeRule(kind, amount)
