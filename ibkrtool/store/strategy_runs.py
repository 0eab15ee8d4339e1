"""Strategy runs in the database: one ``strategy_runs`` row (strategy, parameters, engine, data range) and its
per-bar ``strategy_positions`` (target position decided at each bar's close, and the signal that changed it).

A run is written in ONE transaction, so a failed write leaves nothing behind. Parameters are JSON.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from ibkrtool.store.engine import transaction
from ibkrtool.store.tables import strategy_positions, strategy_runs

_CHUNK = 50_000


def new_run_id() -> str:
    return f"st-{uuid.uuid4().hex[:16]}"


def save_strategy_run(bind: Engine | Connection, run: dict[str, Any], positions: pd.DataFrame) -> str:
    """Store one run and its positions; returns the run id.

    ``run`` holds the ``strategy_runs`` columns except ``run_id``/``created_at``/``data_start``/``data_end`` (filled in
    when absent: the range is the first and last bar start): strategy, params (JSON-able dict), engine (python|r),
    conid, symbol, bar_size, what_to_show. ``positions``: indexed by tz-aware UTC bar start, columns ``position``
    (float) and ``signal`` (str or None). Raises ``StoreError`` if the database refuses the write.
    """
    row = dict(run)
    row.setdefault("run_id", new_run_id())
    row.setdefault("created_at", datetime.now(timezone.utc))
    if len(positions):
        row.setdefault("data_start", positions.index[0].to_pydatetime())
        row.setdefault("data_end", positions.index[-1].to_pydatetime())
    with transaction(bind, f"could not store strategy run {row['run_id']}") as conn:
        _insert(conn, row, positions)
    return row["run_id"]


def _insert(conn: Connection, row: dict[str, Any], positions: pd.DataFrame) -> None:
    conn.execute(strategy_runs.insert(), [row])
    stamps = positions.index.to_pydatetime()
    values = positions["position"].to_numpy(dtype=np.float64).tolist()
    signals = [s if isinstance(s, str) else None for s in positions["signal"].tolist()]
    for lo in range(0, len(stamps), _CHUNK):
        rows = [{"run_id": row["run_id"], "ts": ts, "position": p, "signal": s}
                for ts, p, s in zip(stamps[lo : lo + _CHUNK], values[lo : lo + _CHUNK], signals[lo : lo + _CHUNK],
                                    strict=True)]
        conn.execute(strategy_positions.insert(), rows)


def load_strategy_run(bind: Engine, run_id: str) -> tuple[dict[str, Any], pd.DataFrame] | None:
    """The stored run row and its positions (UTC ``ts`` index; ``position``, ``signal``), or None if unknown."""
    with bind.connect() as conn:
        run = conn.execute(select(strategy_runs).where(strategy_runs.c.run_id == run_id)).mappings().first()
        if run is None:
            return None
        query = (select(strategy_positions.c.ts, strategy_positions.c.position, strategy_positions.c.signal)
                 .where(strategy_positions.c.run_id == run_id).order_by(strategy_positions.c.ts))
        rows = conn.execute(query).all()
    index = pd.DatetimeIndex([r[0] for r in rows], name="ts")
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    frame = pd.DataFrame({"position": [r[1] for r in rows], "signal": [r[2] for r in rows]}, index=index)
    return dict(run), frame
