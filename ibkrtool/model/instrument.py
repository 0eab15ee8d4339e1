"""Instruments as users type them: ``SPY``, ``EURUSD`` / ``EUR.USD``, ``AAPL@NASDAQ``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from ibkrtool.errors import InputError

# ISO codes IB trades on IDEALPRO; six letters made of two of these are read as a forex pair.
FOREX_CURRENCIES = frozenset(
    [
        "USD",
        "EUR",
        "GBP",
        "JPY",
        "CHF",
        "CAD",
        "AUD",
        "NZD",
        "SEK",
        "NOK",
        "DKK",
        "HKD",
        "SGD",
        "MXN",
        "CNH",
        "ZAR",
        "PLN",
        "CZK",
        "HUF",
        "ILS",
        "TRY",
        "KRW",
    ]
)
_STOCK = re.compile(r"^[A-Z][A-Z0-9.\- ]{0,11}$")


class SecType(str, Enum):
    STOCK = "STK"
    FOREX = "CASH"


@dataclass(frozen=True)
class Instrument:
    """What to ask IB for. ``symbol`` is IB's symbol (``EUR`` for EUR.USD), ``currency`` the quote currency."""

    symbol: str
    sec_type: SecType
    exchange: str
    currency: str
    primary_exchange: str = ""

    @property
    def is_forex(self) -> bool:
        return self.sec_type is SecType.FOREX

    @property
    def display(self) -> str:
        """The name users see and the CLI accepts: ``SPY``, ``EUR.USD``."""
        return f"{self.symbol}.{self.currency}" if self.is_forex else self.symbol

    @property
    def default_what_to_show(self) -> str:
        """IB has no TRADES history for forex, so pairs default to MIDPOINT."""
        return "MIDPOINT" if self.is_forex else "TRADES"

    @classmethod
    def parse(cls, spec: str) -> Instrument:
        """Parse a user's instrument spec. Raises ``InputError`` with the accepted forms."""
        text = (spec or "").strip().upper()
        pair = text.replace(".", "").replace("/", "")
        if len(pair) == 6 and pair[:3] in FOREX_CURRENCIES and pair[3:] in FOREX_CURRENCIES and pair.isalpha():
            return cls(pair[:3], SecType.FOREX, "IDEALPRO", pair[3:])
        symbol, at, primary = text.partition("@")
        if not _STOCK.match(symbol) or (at and not primary.isalnum()):
            raise InputError(
                f"instrument {spec!r} is not understood; use a stock symbol (SPY, AAPL@NASDAQ) or a pair (EUR.USD)"
            )
        return cls(symbol, SecType.STOCK, "SMART", "USD", primary)
