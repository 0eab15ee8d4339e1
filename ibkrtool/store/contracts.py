"""Contracts by conid or by the symbol users type (``SPY``, ``EUR.USD``).

A CSV import of a symbol with no known contract creates a local **placeholder**: a negative conid derived
deterministically from the symbol (so re-imports land in the same series). When backfill later resolves the real
contract through IB, ``adopt_placeholder`` moves the placeholder's bars and coverage to the real conid and deletes it.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from sqlalchemy import BigInteger, delete, insert, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import Select

from ibkrtool.model import Instrument
from ibkrtool.model.contract import Contract
from ibkrtool.store import tables as t
from ibkrtool.store.engine import is_postgres

_FIELDS = ("conid", "symbol", "sec_type", "exchange", "primary_exchange", "currency", "local_symbol",
           "trading_class", "min_tick", "time_zone", "details")


def _row(contract: Contract) -> dict:
    row = {f: getattr(contract, f) for f in _FIELDS}
    row["details"] = dict(contract.details)
    row["updated_at"] = datetime.now(timezone.utc)
    return row


def _contract(row: object) -> Contract:
    return Contract(**{f: getattr(row, f) for f in _FIELDS})


def upsert_contract(bind: Engine | Connection, contract: Contract) -> None:
    """Insert or replace the contract with ``contract.conid`` (in the caller's transaction if given a Connection)."""
    if isinstance(bind, Engine):
        with bind.begin() as conn:
            upsert_contract(conn, contract)
        return
    row = _row(contract)
    stmt = (pg_insert if is_postgres(bind) else sqlite_insert)(t.contracts).values(**row)
    stmt = stmt.on_conflict_do_update(index_elements=["conid"], set_={k: stmt.excluded[k] for k in row if k != "conid"})
    bind.execute(stmt)


def get_contract(bind: Engine | Connection, conid: int) -> Contract | None:
    """The stored contract with this conid, or None."""
    query = select(t.contracts).where(t.contracts.c.conid == int(conid))
    return _first(bind, query)


def find_contract(bind: Engine | Connection, display: str) -> Contract | None:
    """The stored contract users call ``display`` (``SPY``, ``EUR.USD``, ``EURUSD``); IB-resolved contracts win
    over local placeholders. Raises ``InputError`` for a symbol that cannot be parsed.
    """
    wanted = Instrument.parse(display)
    query = select(t.contracts).where(t.contracts.c.symbol == wanted.symbol)
    rows = _all(bind, query)
    matches = [c for c in map(_contract, rows) if c.display == wanted.display]
    matches.sort(key=lambda c: (c.conid < 0, abs(c.conid)))
    return matches[0] if matches else None


def contracts_by_conid(bind: Engine | Connection) -> dict[int, Contract]:
    """Every stored contract, keyed by conid."""
    return {c.conid: c for c in map(_contract, _all(bind, select(t.contracts)))}


def placeholder_conid(display: str) -> int:
    """A negative conid derived from the symbol: stable across runs and machines, never an IB conid."""
    digest = hashlib.sha256(display.strip().upper().encode()).digest()
    return -(int.from_bytes(digest[:6], "big") + 1)


def placeholder_contract(display: str) -> Contract:
    """A local stand-in for ``display`` until IB resolves it. Raises ``InputError`` for an unparsable symbol."""
    inst = Instrument.parse(display)
    return Contract(conid=placeholder_conid(inst.display), symbol=inst.symbol, sec_type=inst.sec_type.value,
                    exchange=inst.exchange, primary_exchange=inst.primary_exchange, currency=inst.currency,
                    local_symbol=inst.display, min_tick=0.00005 if inst.is_forex else 0.01,
                    details={"placeholder": True})


def adopt_placeholder(engine: Engine, contract: Contract) -> int:
    """Move bars and coverage of the placeholder for ``contract.display`` to ``contract.conid`` (bars IB already
    delivered win), upsert ``contract`` and delete the placeholder, in one transaction. Returns the bars moved.
    """
    ph = placeholder_conid(contract.display)
    b, real = t.bars, t.bars.alias("real")
    with engine.begin() as conn:
        upsert_contract(conn, contract)
        if get_contract(conn, ph) is None:
            return 0
        clash = select(1).where(real.c.conid == contract.conid, real.c.bar_size == b.c.bar_size,
                                real.c.what_to_show == b.c.what_to_show, real.c.ts == b.c.ts).exists()
        values = [c for c in b.c if c.name != "conid"]
        source = select(literal(contract.conid, BigInteger), *values).where(b.c.conid == ph, ~clash)
        moved = conn.execute(insert(b).from_select(["conid", *[c.name for c in values]], source)).rowcount
        conn.execute(delete(b).where(b.c.conid == ph))
        conn.execute(update(t.coverage).where(t.coverage.c.conid == ph).values(conid=contract.conid))
        conn.execute(delete(t.contracts).where(t.contracts.c.conid == ph))
        return moved


def _first(bind: Engine | Connection, query: Select) -> Contract | None:
    rows = _all(bind, query)
    return _contract(rows[0]) if rows else None


def _all(bind: Engine | Connection, query: Select) -> list:
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return conn.execute(query).all()
    return bind.execute(query).all()
