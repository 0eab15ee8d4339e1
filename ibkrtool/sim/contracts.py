"""The sim's contract registry: the instruments it knows, with IB's real conids, and TWS-like matching.

Values follow what TWS returns in contract details (see /work/shared/reference/ib_api_facts.md §3
"reqContractDetails"): stocks on SMART with their primary exchange, forex pairs on IDEALPRO with
``symbol`` = base currency and ``currency`` = quote currency (``Forex('EURUSD')`` arrives as EUR/CASH/USD).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

_STK_ORDER_TYPES = (
    "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AVGCOST,BASKET,BENCHPX,COND,CONDORDER,DAY,DEACT,DEACTDIS,DEACTEOD,"
    "GAT,GTC,GTD,GTT,HID,IOC,LIT,LMT,MIT,MKT,MTL,NGCOMB,NONALGO,OCA,REL,RELSTK,SCALE,SCALERST,SNAPMID,"
    "SNAPMKT,SNAPREL,STP,STPLMT,TRAIL,TRAILLIT,TRAILLMT,TRAILMIT,WHATIF"
)
_CASH_ORDER_TYPES = (
    "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AVGCOST,BASKET,CASHQTY,COND,CONDORDER,DAY,DEACT,DEACTDIS,DEACTEOD,"
    "GAT,GTC,GTD,GTT,IOC,LIT,LMT,MIT,MKT,NONALGO,OCA,REL,SCALE,SCALERST,STP,STPLMT,TRAIL,TRAILLIT,TRAILLMT,"
    "TRAILMIT,WHATIF"
)
_STK_VALID_EXCHANGES = (
    "SMART,AMEX,NYSE,CBOE,PHLX,ISE,CHX,ARCA,NASDAQ,DRCTEDGE,BEX,BATS,EDGEA,BYX,IEX,EDGX,FOXRIVER,PEARL,"
    "NYSENAT,LTSE,MEMX,IBEOS,OVERNIGHT,TPLUS0,PSX"
)


@dataclass(frozen=True)
class SimContract:
    """One instrument as TWS describes it in contract details (field names in the field's words)."""

    conid: int
    symbol: str
    sec_type: str  # "STK" | "CASH"
    exchange: str  # SMART | IDEALPRO
    primary_exchange: str  # ARCA / NASDAQ for stocks, "" for forex
    currency: str
    local_symbol: str
    trading_class: str
    market_name: str
    min_tick: float
    time_zone: str  # IB's zone id
    long_name: str
    stock_type: str  # ETF | COMMON | "" (forex)
    order_types: str
    valid_exchanges: str

    @property
    def is_forex(self) -> bool:
        return self.sec_type == "CASH"


def _stock(conid: int, symbol: str, primary: str, market_name: str, long_name: str, stock_type: str) -> SimContract:
    return SimContract(
        conid=conid, symbol=symbol, sec_type="STK", exchange="SMART", primary_exchange=primary, currency="USD",
        local_symbol=symbol, trading_class=market_name, market_name=market_name, min_tick=0.01,
        time_zone="US/Eastern", long_name=long_name, stock_type=stock_type, order_types=_STK_ORDER_TYPES,
        valid_exchanges=_STK_VALID_EXCHANGES,
    )


def _pair(conid: int, base: str, quote: str, long_name: str) -> SimContract:
    local = f"{base}.{quote}"
    return SimContract(
        conid=conid, symbol=base, sec_type="CASH", exchange="IDEALPRO", primary_exchange="", currency=quote,
        local_symbol=local, trading_class=local, market_name=local,
        min_tick=0.005 if quote == "JPY" else 0.00005, time_zone="US/Eastern", long_name=long_name,
        stock_type="", order_types=_CASH_ORDER_TYPES, valid_exchanges="IDEALPRO",
    )


# Conids are IB's real ones (brief of issue 3; AAPL/EUR.USD also in facts §3).
CONTRACTS: tuple[SimContract, ...] = (
    _stock(756733, "SPY", "ARCA", "SPY", "SPDR S&P 500 ETF TRUST", "ETF"),
    _stock(320227571, "QQQ", "NASDAQ", "NMS", "INVESCO QQQ TRUST SERIES 1", "ETF"),
    _stock(265598, "AAPL", "NASDAQ", "NMS", "APPLE INC", "COMMON"),
    _stock(272093, "MSFT", "NASDAQ", "NMS", "MICROSOFT CORP", "COMMON"),
    _stock(9579970, "IWM", "ARCA", "IWM", "ISHARES RUSSELL 2000 ETF", "ETF"),
    _pair(12087792, "EUR", "USD", "European Monetary Union Euro"),
    _pair(12087797, "GBP", "USD", "British pound"),
    _pair(15016059, "USD", "JPY", "US dollar"),
    _pair(14433401, "AUD", "USD", "Australian dollar"),
    _pair(12087820, "USD", "CHF", "US dollar"),
    _pair(15016062, "USD", "CAD", "US dollar"),
)
_BY_CONID = {c.conid: c for c in CONTRACTS}


def contract_by_conid(conid: int) -> SimContract | None:
    """The contract with IB's ``conid``, or None if the sim does not know it."""
    return _BY_CONID.get(conid)


def _matches(c: SimContract, symbol: str, sec_type: str, currency: str, exchange: str,
             primary_exchange: str, local_symbol: str) -> bool:
    if local_symbol and local_symbol.upper() != c.local_symbol:
        return False
    if symbol and symbol.upper() != c.symbol:
        return False
    if not symbol and not local_symbol:
        return False
    if sec_type and sec_type.upper() != c.sec_type:
        return False
    if currency and currency.upper() != c.currency:
        return False
    # TWS accepts the routing exchange (SMART) or the listing exchange for a stock; IDEALPRO for forex.
    if exchange and exchange.upper() not in (c.exchange, c.primary_exchange):
        return False
    return not primary_exchange or not c.primary_exchange or primary_exchange.upper() == c.primary_exchange


def find_contracts(symbol: str, sec_type: str, currency: str, exchange: str,
                   primary_exchange: str = "", conid: int = 0, local_symbol: str = "") -> list[SimContract]:
    """Contracts matching a request like TWS does: by ``conid`` if non-zero, else by symbol/localSymbol,
    secType and the optional currency/exchange. Empty fields match anything. ``[]`` means IB error 200.

    A stock addressed on its listing exchange (``AAPL@NASDAQ``) is returned with that exchange, as TWS does.
    """
    if conid:
        c = _BY_CONID.get(conid)
        if c is None:
            return []
        ok = _matches(c, symbol, sec_type, currency, exchange, primary_exchange, local_symbol) or not (
            symbol or local_symbol)
        return [c] if ok else []
    found = [c for c in CONTRACTS if _matches(c, symbol, sec_type, currency, exchange, primary_exchange, local_symbol)]
    if exchange and found and exchange.upper() not in ("SMART", "IDEALPRO"):
        found = [replace(c, exchange=exchange.upper()) for c in found]
    return found


def trading_hours(contract: SimContract, now: datetime, days: int = 7) -> tuple[str, str]:
    """``(tradingHours, liquidHours)`` in IB's format for ``days`` calendar days from ``now`` (tz-aware).

    Format (TWS 10.x): ``20261120:0400-20261120:2000;20261121:CLOSED`` in the contract's time zone;
    a forex session that starts the evening before is written ``20261119:1700-20261120:1700``.
    """
    from ibkrtool.sim import calendar

    return calendar.trading_hours_strings(contract, now, days)
