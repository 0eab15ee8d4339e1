"""The ``executions`` table: fills of every mode (simulate, paper, live), keyed by IB's exec id (or a simulated
one), with the ``orderRef`` that makes reruns idempotent. Writes are upserts: recording the same fill twice
(e.g. from the live stream and again from reqExecutions after a reconnect) leaves one row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from ibkrtool.errors import StoreError
from ibkrtool.model.order import Fill
from ibkrtool.store.engine import is_postgres, transaction
from ibkrtool.store.tables import executions


def _row(fill: Fill, run_id: str | None, conid: int, realized_pnl: float | None, now: datetime) -> dict:
    return {"exec_id": fill.exec_id, "run_id": run_id, "order_ref": fill.order_ref, "order_id": fill.order_id,
            "perm_id": fill.perm_id, "account": fill.account or "SIM", "conid": conid, "symbol": fill.symbol,
            "side": fill.side.value, "quantity": fill.quantity, "price": fill.price, "commission": fill.commission,
            "commission_currency": fill.commission_currency, "realized_pnl": realized_pnl, "exec_time": fill.time,
            "mode": fill.mode, "recorded_at": now}


def record_fills(bind: Engine | Connection, fills: Sequence[Fill], conid: int, run_id: str | None = None,
                 realized: dict[str, float | None] | None = None) -> int:
    """Upsert ``fills`` (one row per exec id; a later record updates commission and P&L). Returns rows written.

    ``realized`` maps exec id → IB's realized P&L. Raises ``StoreError`` if the database refuses the write.
    """
    if not fills:
        return 0
    now = datetime.now(timezone.utc)
    rows = [_row(f, run_id, conid, (realized or {}).get(f.exec_id), now) for f in fills]
    with transaction(bind, "could not record executions") as conn:
        _upsert(conn, rows)
    return len(rows)


def _upsert(conn: Connection, rows: list[dict]) -> None:
    if is_postgres(conn):
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    stmt = insert(executions).values(rows)
    keep = ("commission", "commission_currency", "realized_pnl", "recorded_at")
    stmt = stmt.on_conflict_do_update(index_elements=["exec_id"], set_={k: stmt.excluded[k] for k in keep})
    conn.execute(stmt)


def refs_with_executions(engine: Engine, refs: Iterable[str] | None = None, mode: str | None = None,
                         conid: int | None = None, account: str | None = None) -> set[str]:
    """The ``order_ref`` values (of ``refs``, or all) that have at least one recorded execution, optionally only
    executions in ``mode``, of ``conid`` and in ``account``. Raises ``StoreError`` if the table cannot be read.

    Current keys name their mode, account and instrument themselves (``execution.identity``); the filters are what
    makes an old-format key (``<run id>:<bar>``) count only for the mode, account and instrument it was placed in."""
    query = select(executions.c.order_ref).distinct().where(executions.c.order_ref.is_not(None))
    for column, value in ((executions.c.mode, mode), (executions.c.conid, conid), (executions.c.account, account)):
        if value is not None:
            query = query.where(column == value)
    wanted = set(refs) if refs is not None else None
    try:
        with engine.connect() as conn:
            found = {r[0] for r in conn.execute(query)}
    except DBAPIError as exc:
        raise StoreError(f"could not read executions: {str(exc.orig).strip().splitlines()[0]}") from None
    return found if wanted is None else found & wanted


def read_executions(engine: Engine, run_id: str | None = None, mode: str | None = None) -> list[dict]:
    """Recorded executions (oldest first) as dicts of the table's columns, filtered by run and/or mode."""
    query = select(executions).order_by(executions.c.exec_time, executions.c.exec_id)
    if run_id is not None:
        query = query.where(executions.c.run_id == run_id)
    if mode is not None:
        query = query.where(executions.c.mode == mode)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]
