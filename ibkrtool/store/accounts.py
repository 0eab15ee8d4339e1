"""Account snapshots (table ``account_snapshots``): every tag IB sent, one row per tag and currency."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from ibkrtool.errors import StoreError
from ibkrtool.store.tables import account_snapshots


def write_snapshot(engine: Engine, taken_at: datetime, account: str, account_type: str | None,
                   values: Iterable[tuple[str, str, str]]) -> int:
    """Store ``(tag, value, currency)`` rows of one account taken at ``taken_at`` (UTC) in one transaction.

    Returns the rows written. Raises ``StoreError``.
    """
    rows = {(tag, cur): value for tag, value, cur in values}  # IB may repeat a tag; the last one wins
    payload = [{"taken_at": taken_at, "account": account, "account_type": account_type, "tag": tag,
                "value": str(value), "currency": cur} for (tag, cur), value in rows.items()]
    if not payload:
        return 0
    try:
        with engine.begin() as conn:
            conn.execute(insert(account_snapshots), payload)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot store the account snapshot of {account}: {exc.__class__.__name__}") from exc
    return len(payload)


def latest_snapshot(engine: Engine, account: str) -> dict[tuple[str, str], str]:
    """The newest snapshot of ``account`` as ``{(tag, currency): value}`` (empty if none). Raises ``StoreError``."""
    t = account_snapshots.c
    try:
        with engine.connect() as conn:
            last = conn.execute(select(t.taken_at).where(t.account == account).order_by(t.taken_at.desc())
                                .limit(1)).scalar()
            if last is None:
                return {}
            rows = conn.execute(select(t.tag, t.currency, t.value).where(t.account == account, t.taken_at == last))
            return {(tag, cur): value for tag, cur, value in rows}
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read account snapshots: {exc.__class__.__name__}") from exc
