"""Trading costs: Interactive Brokers' commission schedules, a custom model, and slippage.

Sources (IBKR Pro, read 2026; exchange, clearing-house and regulatory pass-through fees vary by venue and are only
modelled where stated):

* US stocks, **fixed**: USD 0.005 per share, minimum USD 1.00 per order, maximum 1% of trade value.
  https://www.interactivebrokers.com/en/pricing/commissions-stocks.php ("Fixed"). Regulatory sale fees
  (SEC fee, FINRA TAF) are not modelled.
* US stocks, **tiered**: per share by the month's cumulative volume — ≤ 300,000 shares USD 0.0035;
  300,001–3,000,000 USD 0.0020; 3,000,001–20,000,000 USD 0.0015; 20,000,001–100,000,000 USD 0.0010;
  above USD 0.0005 — minimum USD 0.35 per order, maximum 1% of trade value, plus the NSCC/DTC clearing fee
  USD 0.00020 per share. Same page, "Tiered". Exchange fees/rebates (venue-dependent) are not modelled.
* Forex (IDEALPRO spot): 0.20 basis points × trade value, minimum USD 2.00 per order (first tier, ≤ USD 1bn a month).
  https://www.interactivebrokers.com/en/pricing/commissions-spot-currencies.php

Amounts are in the instrument's quote currency (the account currency of a backtest). For forex pairs whose quote
currency is not USD, the USD 2.00 minimum is converted with the fill price when the base currency is USD
(e.g. USD.JPY: 2 × price JPY) and taken as 2.00 quote units otherwise (an approximation, stated in the output).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ibkrtool.errors import InputError

# (cumulative monthly shares up to, USD per share) — IBKR Pro tiered, US stocks.
TIERED_US_STOCK: tuple[tuple[float, float], ...] = (
    (300_000, 0.0035),
    (3_000_000, 0.0020),
    (20_000_000, 0.0015),
    (100_000_000, 0.0010),
    (float("inf"), 0.0005),
)
TIERED_CLEARING_PER_SHARE = 0.00020


@dataclass(frozen=True)
class CommissionModel:
    """A commission schedule. ``commission(quantity, price, month_volume)`` returns the cost of ONE order.

    ``quantity`` is the absolute number of shares (or base-currency units), ``price`` the fill price in the quote
    currency, ``month_volume`` the quantity already traded this calendar month (only the tiered schedule uses it).
    """

    name: str = "none"
    per_share: float = 0.0
    pct: float = 0.0  # fraction of trade value, e.g. 0.001 = 0.1 %
    minimum: float = 0.0
    maximum_pct: float = 0.0  # cap as a fraction of trade value; 0 = no cap
    tiered: bool = False
    min_in_usd_base: bool = False  # forex with USD base: the USD minimum is converted with the price

    def commission(self, quantity: float, price: float, month_volume: float = 0.0) -> float:
        if quantity == 0:
            return 0.0
        value = quantity * price
        fee = quantity * (self._tiered_rate(month_volume) if self.tiered else self.per_share) + value * self.pct
        floor = self.minimum * price if self.min_in_usd_base else self.minimum
        fee = max(fee, floor)
        if self.maximum_pct:
            fee = min(fee, value * self.maximum_pct)
        if self.tiered:
            fee += quantity * TIERED_CLEARING_PER_SHARE
        return fee

    @staticmethod
    def _tiered_rate(month_volume: float) -> float:
        # The rate of the tier the month's volume has reached when the order is placed (IB applies the tier
        # on the cumulative volume; an order straddling two tiers is charged at the lower tier's rate here).
        for limit, rate in TIERED_US_STOCK:
            if month_volume < limit:
                return rate
        return TIERED_US_STOCK[-1][1]


IB_FIXED = CommissionModel("ib-fixed", per_share=0.005, minimum=1.00, maximum_pct=0.01)
IB_TIERED = CommissionModel("ib-tiered", minimum=0.35, maximum_pct=0.01, tiered=True)
NO_COMMISSION = CommissionModel("none")


def ib_forex(base: str = "EUR", quote: str = "USD") -> CommissionModel:
    """IB's IDEALPRO commission for a pair; the USD 2.00 minimum expressed in the quote currency (see module doc)."""
    return CommissionModel("ib-forex", pct=0.20e-4, minimum=2.00, min_in_usd_base=(quote != "USD" and base == "USD"))


_CUSTOM_KEYS = {"per_share", "pct", "min", "max_pct"}


def parse_commission(text: str, base: str = "EUR", quote: str = "USD") -> CommissionModel:
    """``ib-fixed``, ``ib-tiered``, ``ib-forex``, ``none`` or ``custom:per_share=0.01,pct=0.05,min=1,max_pct=1``.

    In ``custom``, ``pct`` and ``max_pct`` are PERCENT of trade value (``pct=0.05`` = 0.05 %); ``per_share`` and
    ``min`` are in the quote currency. Raises ``InputError`` for anything else.
    """
    spec = (text or "").strip().lower()
    named = {"ib-fixed": IB_FIXED, "ib-tiered": IB_TIERED, "none": NO_COMMISSION}
    if spec in named:
        return named[spec]
    if spec == "ib-forex":
        return ib_forex(base, quote)
    if spec.startswith("custom:"):
        values = _parse_pairs(spec[len("custom:"):], text)
        unknown = set(values) - _CUSTOM_KEYS
        if unknown or not values:
            raise InputError(f"commission {text!r}: use custom:per_share=..,pct=..,min=..,max_pct=.. (pct in percent)")
        return CommissionModel(
            "custom",
            per_share=values.get("per_share", 0.0),
            pct=values.get("pct", 0.0) / 100,
            minimum=values.get("min", 0.0),
            maximum_pct=values.get("max_pct", 0.0) / 100,
        )
    raise InputError(f"unknown commission model {text!r}; use ib-fixed, ib-tiered, ib-forex, none or custom:...")


def _parse_pairs(body: str, original: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in body.split(","))):
        key, sep, raw = part.partition("=")
        try:
            values[key.strip()] = float(raw) if sep else float("nan")
        except ValueError:
            raise InputError(f"commission {original!r}: {key.strip()!r} needs a number") from None
        if not values[key.strip()] >= 0:
            raise InputError(f"commission {original!r}: {key.strip()!r} must be a number >= 0")
    return values


@dataclass(frozen=True)
class Slippage:
    """Adverse fill-price move per order: ``amount`` ticks (``unit="ticks"``) or basis points (``unit="bps"``)."""

    amount: float = 0.0
    unit: str = "ticks"

    def per_unit(self, price: float, tick: float) -> float:
        """Price move against the order, in the quote currency per share/unit."""
        return self.amount * tick if self.unit == "ticks" else price * self.amount * 1e-4

    def __str__(self) -> str:
        if self.amount == 0:
            return "none"
        return f"{self.amount:g}{'tick' if self.unit == 'ticks' else 'bps'}"


_SLIPPAGE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ticks?|bps|bp)\s*$", re.IGNORECASE)


def parse_slippage(text: str) -> Slippage:
    """``0``, ``1tick``, ``2ticks``, ``2bps``. Raises ``InputError`` otherwise."""
    spec = (text or "").strip()
    if spec in {"0", "none", ""}:
        return Slippage()
    match = _SLIPPAGE.match(spec)
    if not match:
        raise InputError(f"slippage {text!r} is not understood; use e.g. 0, 1tick, 2ticks or 2bps")
    unit = "ticks" if match[2].lower().startswith("tick") else "bps"
    return Slippage(float(match[1]), unit)


def default_tick(price: float, is_forex: bool, quote: str = "USD") -> float:
    """Minimum price increment when the contract's own ``min_tick`` is unknown.

    US stocks: USD 0.01 at or above USD 1.00, 0.0001 below (SEC Rule 612). IDEALPRO: 0.00005 (half a pip),
    0.005 for JPY-quoted pairs.
    """
    if is_forex:
        return 0.005 if quote == "JPY" else 0.00005
    return 0.01 if price >= 1.0 else 0.0001
