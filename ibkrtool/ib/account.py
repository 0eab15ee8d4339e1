"""Account summary from IB (reqAccountSummary), as our own dataclasses. Paper accounts have ids starting ``DU``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from ibkrtool.errors import IbRefused

if TYPE_CHECKING:
    from ibkrtool.ib.gateway import Gateway

# The figures the summary shows, in IB's tag names → our names.
FIGURES = {
    "NetLiquidation": "net_liquidation",
    "TotalCashValue": "total_cash_value",
    "BuyingPower": "buying_power",
    "AvailableFunds": "available_funds",
    "ExcessLiquidity": "excess_liquidity",
    "GrossPositionValue": "gross_position_value",
}


@dataclass(frozen=True)
class AccountValue:
    """One value IB reports for an account: its tag (``NetLiquidation``), the value as text, and its currency."""

    account: str
    tag: str
    value: str
    currency: str


@dataclass(frozen=True)
class AccountSummary:
    """One account's summary at ``taken_at`` (UTC). Money values are in ``currency``; None = IB sent none."""

    account: str
    mode: str  # "paper" or "live"
    account_type: str  # IB's AccountType tag, e.g. INDIVIDUAL
    currency: str
    taken_at: datetime
    figures: dict[str, float | None]
    values: tuple[tuple[str, str, str], ...] = field(default=())  # every (tag, value, currency) IB sent

    def as_dict(self) -> dict:
        return {"account": self.account, "mode": self.mode, "account_type": self.account_type,
                "currency": self.currency, "taken_at": self.taken_at.isoformat(), **self.figures}


def account_mode(account: str) -> str:
    """``paper`` for IB paper-trading ids (``DU…``), else ``live``."""
    return "paper" if account.upper().startswith("DU") else "live"


def summarise(account: str, values: Sequence[AccountValue], taken_at: datetime) -> AccountSummary:
    """The values of one account → ``AccountSummary``."""
    rows = [(v.tag, v.value, v.currency or "") for v in values if v.account == account]
    by_tag = {tag: (value, cur) for tag, value, cur in rows if cur not in ("BASE",)}
    currency = next((cur for tag, _, cur in rows if tag == "NetLiquidation" and cur), "")
    figures = {name: _number(by_tag.get(tag, ("", ""))[0]) for tag, name in FIGURES.items()}
    return AccountSummary(account, account_mode(account), by_tag.get("AccountType", ("", ""))[0], currency,
                          taken_at, figures, tuple(rows))


def _number(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


async def account_summaries(gateway: Gateway, account: str = "") -> list[AccountSummary]:
    """Summaries of every managed account (or just ``account``), taken at the wall clock (UTC).

    Raises ``IbRefused`` for an account this login does not manage, ``GatewayError`` when the link is gone.
    """
    values = await gateway.account_values()
    taken_at = gateway.wall_now()
    accounts = sorted({v.account for v in values if v.account and v.account != "All"})
    if account:
        if account not in accounts:
            raise IbRefused(f"account {account} is not managed by this login; known: {', '.join(accounts) or 'none'}")
        accounts = [account]
    return [summarise(a, values, taken_at) for a in accounts]
