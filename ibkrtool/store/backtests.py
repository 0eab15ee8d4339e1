"""Backtest results in the database: one ``backtest_runs`` row per run and its ``backtest_trades``.

Each run is written in ONE transaction (the caller may pass a Connection inside its own transaction), so a failed
write leaves nothing behind. Metrics, parameters and settings are JSON; non-finite floats become null, because
PostgreSQL's JSONB refuses NaN.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from ibkrtool.store.engine import transaction
from ibkrtool.store.tables import backtest_runs, backtest_trades


def plain(value: Any) -> Any:
    """``value`` made JSON-safe: numpy scalars → Python, timestamps → ISO text, NaN/inf → None."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (pd.Timestamp, datetime)):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def new_run_id() -> str:
    return f"bt-{uuid.uuid4().hex[:16]}"


def trade_rows(run_id: str, trades: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows for ``backtest_trades`` from an engine trades table (times tz-aware UTC)."""
    rows = []
    for no, t in enumerate(trades.itertuples(index=False), start=1):
        rows.append({
            "run_id": run_id, "trade_no": no,
            "entry_ts": t.entry_time.to_pydatetime(), "exit_ts": t.exit_time.to_pydatetime(),
            "side": t.side if isinstance(t.side, str) else None, "quantity": float(t.quantity),
            "entry_price": float(t.entry_price),
            "exit_price": float(t.exit_price), "gross_pnl": float(t.gross_pnl), "commission": float(t.commission),
            "net_pnl": float(t.net_pnl), "bars_held": int(t.bars_held),
            "exit_reason": t.exit_reason if isinstance(t.exit_reason, str) else None,
        })
    return rows


def save_backtest(bind: Engine | Connection, run: dict[str, Any], trades: pd.DataFrame) -> str:
    """Store one run and its trades; returns the run id.

    ``run`` holds the ``backtest_runs`` columns except ``run_id``/``created_at`` (filled in when absent):
    strategy, params, symbol, conid, bar_size, what_to_show, data_start, data_end (tz-aware UTC), fill_rule,
    cost_model, settings, metrics, engine_version. Raises ``StoreError`` if the database refuses the write.
    """
    row = dict(run)
    row.setdefault("run_id", new_run_id())
    row.setdefault("created_at", datetime.now(timezone.utc))
    for key in ("params", "settings", "metrics"):
        row[key] = plain(row.get(key) or {})
    with transaction(bind, f"could not store backtest {row['run_id']}") as conn:
        _insert(conn, row, trades)
    return row["run_id"]


def _insert(conn: Connection, row: dict[str, Any], trades: pd.DataFrame) -> None:
    conn.execute(backtest_runs.insert(), [row])
    rows = trade_rows(row["run_id"], trades)
    if rows:
        conn.execute(backtest_trades.insert(), rows)


def load_backtest(bind: Engine, run_id: str) -> tuple[dict[str, Any], pd.DataFrame] | None:
    """The stored run row and its trades (ordered by trade number), or None if there is no such run."""
    with bind.connect() as conn:
        run = conn.execute(select(backtest_runs).where(backtest_runs.c.run_id == run_id)).mappings().first()
        if run is None:
            return None
        query = select(backtest_trades).where(backtest_trades.c.run_id == run_id).order_by(backtest_trades.c.trade_no)
        trades = pd.DataFrame([dict(r) for r in conn.execute(query).mappings()])
    return dict(run), trades
