"""The execution log CSV (``--log FILE``): one row per fill, ``time`` ISO 8601 UTC first, money as IB reports it."""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from typing import IO

from ibkrtool.model.order import Fill

LOG_COLUMNS = ("time", "symbol", "side", "quantity", "price", "commission", "order_ref", "mode")


def log_rows(fills: Sequence[Fill]) -> list[dict[str, object]]:
    return [{"time": f.time.strftime("%Y-%m-%dT%H:%M:%SZ"), "symbol": f.symbol, "side": f.side.value,
             "quantity": f"{f.quantity:g}", "price": repr(float(f.price)), "commission": f"{f.commission:.6g}",
             "order_ref": f.order_ref, "mode": f.mode} for f in fills]


def write_execution_log(fills: Sequence[Fill], target: str | IO[str]) -> int:
    """Write ``execution_log.csv`` to a path or ``-`` (stdout); returns the rows written."""
    rows = log_rows(fills)
    if target == "-" or not isinstance(target, str):
        _write(rows, sys.stdout if target == "-" else target)
    else:
        with open(target, "w", newline="") as handle:
            _write(rows, handle)
    return len(rows)


def _write(rows: list[dict[str, object]], handle: IO[str]) -> None:
    writer = csv.DictWriter(handle, fieldnames=LOG_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
