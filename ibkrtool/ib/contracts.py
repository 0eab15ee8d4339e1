"""Qualify an ``Instrument`` with IB once, cache it in the ``contracts`` table, and convert between IB's Contract
and ours. IB's ContractDetails stop here.
"""

from __future__ import annotations

import logging
from typing import Any

from ibkrtool.errors import IbRefused
from ibkrtool.ib import errors as codes
from ibkrtool.ib.compat import IB, Contract, Forex, RequestError, Stock
from ibkrtool.model.contract import Contract as ToolContract
from ibkrtool.model.instrument import Instrument
from ibkrtool.store.contracts import adopt_placeholder, find_contract

log = logging.getLogger(__name__)
# IB sends legacy zone ids; keep IANA names in the store.
_ZONES = {"US/Eastern": "America/New_York", "US/Central": "America/Chicago", "EST": "America/New_York",
          "EST5EDT": "America/New_York", "US/Pacific": "America/Los_Angeles"}


def ib_contract_for(instrument: Instrument) -> Contract:
    """The unqualified IB contract for an instrument (SMART stock in USD, or an IDEALPRO pair)."""
    if instrument.is_forex:
        return Forex(pair=instrument.symbol + instrument.currency)
    return Stock(instrument.symbol, instrument.exchange, instrument.currency,
                 primaryExchange=instrument.primary_exchange)


def to_ib(contract: ToolContract) -> Contract:
    """Our cached contract → an IB Contract carrying the conid (no round trip needed)."""
    return Contract(conId=contract.conid, symbol=contract.symbol, secType=contract.sec_type,
                    exchange=contract.exchange, primaryExchange=contract.primary_exchange,
                    currency=contract.currency, localSymbol=contract.local_symbol,
                    tradingClass=contract.trading_class)


def from_details(details: Any, requested: Contract) -> ToolContract:
    """IB ContractDetails → our Contract. The requested exchange (SMART) is kept for routing."""
    c = details.contract
    extra = {"long_name": details.longName, "trading_hours": details.tradingHours,
             "liquid_hours": details.liquidHours, "valid_exchanges": details.validExchanges,
             "market_name": details.marketName, "stock_type": getattr(details, "stockType", "")}
    return ToolContract(
        conid=int(c.conId), symbol=c.symbol, sec_type=c.secType, exchange=requested.exchange or c.exchange,
        primary_exchange=c.primaryExchange or requested.primaryExchange, currency=c.currency,
        local_symbol=c.localSymbol, trading_class=c.tradingClass, min_tick=float(details.minTick or 0.0),
        time_zone=_ZONES.get(details.timeZoneId, details.timeZoneId or "America/New_York"), details=extra,
    )


def cached(engine: Any, instrument: Instrument) -> ToolContract | None:
    """The contract stored for ``instrument`` (matching type and currency), or None."""
    if engine is None:
        return None
    found = find_contract(engine, instrument.display)
    if found is None or found.is_placeholder:
        return None
    if found.sec_type != instrument.sec_type.value or found.currency != instrument.currency:
        return None
    return found


async def qualify(ib: IB, instrument: Instrument, engine: Any = None) -> ToolContract:
    """Resolve ``instrument`` to IB's contract: from the store if cached, else by asking IB and caching the answer.

    Raises ``IbRefused`` (exit 6) for a symbol IB does not know (IB 200) or an ambiguous one.
    """
    hit = cached(engine, instrument)
    if hit is not None:
        return hit
    requested = ib_contract_for(instrument)
    try:
        details = await ib.reqContractDetailsAsync(requested)
    except RequestError as exc:
        code, message = getattr(exc, "code", 0), getattr(exc, "message", str(exc))
        if code == codes.NO_SECURITY_DEFINITION:
            raise IbRefused(f"unknown symbol '{instrument.display}' (IB: {_first_sentence(message)})", code) from None
        detail = f"IB refused contract details for '{instrument.display}' (IB {code}: {message})"
        raise IbRefused(detail, code) from None
    matching = [d for d in details if d.contract.secType == requested.secType]
    if not matching:
        raise IbRefused(f"unknown symbol '{instrument.display}' (IB: No security definition has been found)", 200)
    if len(matching) > 1:
        raise IbRefused(f"symbol '{instrument.display}' is ambiguous at IB; add the primary exchange, e.g. "
                        f"{instrument.symbol}@NASDAQ", 200)
    contract = from_details(matching[0], requested)
    if engine is not None:
        moved = adopt_placeholder(engine, contract)  # upserts; a CSV-imported placeholder gives way to IB's conid
        if moved:
            log.info("moved %d imported bars of %s to conid %s", moved, instrument.display, contract.conid)
    log.info("qualified %s as conid %s", instrument.display, contract.conid)
    return contract


def _first_sentence(message: str) -> str:
    text = message.strip()
    for marker in (" for the request", "."):
        if marker in text:
            return text.split(marker)[0].strip()
    return text
