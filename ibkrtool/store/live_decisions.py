"""The ``live_decisions`` table (sql/002_live_decisions.sql): the live trader's decisions, one row each, written
as they are taken (a crash loses nothing already decided)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from ibkrtool.errors import StoreError
from ibkrtool.store.tables import live_decisions


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSONB has no NaN
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    return value


def record_decision(engine: Engine, run_id: str, decided_at: datetime, bar_ts: datetime | None, kind: str,
                    detail: str, position: float | None = None, target: float | None = None, order_ref: str = "",
                    data: dict[str, Any] | None = None) -> None:
    """Insert one decision (times tz-aware UTC). Raises ``StoreError`` if the database refuses it."""
    row = {"run_id": run_id, "decided_at": decided_at, "bar_ts": bar_ts, "kind": kind, "detail": detail,
           "position": position, "target": target, "order_ref": order_ref or None, "data": _json_safe(data or {})}
    try:
        with engine.begin() as conn:
            conn.execute(live_decisions.insert(), [row])
    except DBAPIError as exc:
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise StoreError(f"could not record a live decision: {first} (run `ibkrtool db init`?)") from None


def read_decisions(engine: Engine, run_id: str) -> list[dict[str, Any]]:
    """The decisions of ``run_id`` in the order taken."""
    query = select(live_decisions).where(live_decisions.c.run_id == run_id).order_by(live_decisions.c.id)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]
