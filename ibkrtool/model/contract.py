"""A contract as IB resolved it (conid and details). ``ib/`` converts IB's ContractDetails into this type."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Contract:
    """One tradable contract. ``conid`` is IB's contract id; negative conids are local placeholders.

    ``time_zone`` is the exchange's IANA zone (e.g. ``America/New_York``); ``details`` holds the rest of IB's
    contract details worth keeping (``trading_hours``, ``liquid_hours``, ``long_name``...) as plain JSON values.
    """

    conid: int
    symbol: str
    sec_type: str = "STK"
    exchange: str = "SMART"
    primary_exchange: str = ""
    currency: str = "USD"
    local_symbol: str = ""
    trading_class: str = ""
    min_tick: float = 0.01
    time_zone: str = "America/New_York"
    details: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def is_forex(self) -> bool:
        return self.sec_type == "CASH"

    @property
    def is_placeholder(self) -> bool:
        """True for a contract created locally (e.g. by a CSV import) that IB has not confirmed yet."""
        return self.conid < 0

    @property
    def display(self) -> str:
        """The name users see and the CLI accepts: ``SPY``, ``EUR.USD``."""
        return f"{self.symbol}.{self.currency}" if self.is_forex else self.symbol
