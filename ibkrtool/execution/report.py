"""The execution log CSV (``--log FILE``): one row per fill, ``time`` ISO 8601 UTC first, money as IB reports it.

A file is appended to, so the log of every run accumulates: the header is written only when the file is new or
empty, and a file whose first line is another header is refused before anything is executed
(``check_execution_log``). ``-`` (stdout) or an open stream gets the header, then the rows.
"""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Sequence
from typing import IO

from ibkrtool.errors import InputError
from ibkrtool.model.order import Fill

LOG_COLUMNS = ("time", "symbol", "side", "quantity", "price", "commission", "order_ref", "mode")


def log_rows(fills: Sequence[Fill]) -> list[dict[str, object]]:
    return [{"time": f.time.strftime("%Y-%m-%dT%H:%M:%SZ"), "symbol": f.symbol, "side": f.side.value,
             "quantity": f"{f.quantity:g}", "price": repr(float(f.price)), "commission": f"{f.commission:.6g}",
             "order_ref": f.order_ref, "mode": f.mode} for f in fills]


def check_execution_log(path: str) -> None:
    """Refuse (``InputError``, exit 3) a ``--log`` path the log cannot be appended to: a folder, a missing folder,
    or an existing file that is not an execution log (its first line is not the log's header). ``-`` passes."""
    if path == "-":
        return
    folder = os.path.dirname(path) or "."
    if os.path.isdir(path):
        raise InputError(f"--log {path} is a folder; give a file name")
    if not os.path.isdir(folder):
        raise InputError(f"--log {path}: the folder {folder} does not exist")
    first = _first_line(path)
    if first and first != ",".join(LOG_COLUMNS):
        raise InputError(f"--log {path} is not an execution log (its first line is {first[:80]!r}, not "
                         f"{','.join(LOG_COLUMNS)!r}); give a new file or an execution log to append to")


def write_execution_log(fills: Sequence[Fill], target: str | IO[str]) -> int:
    """Append the fills to the log at path ``target`` (header only when the file is new or empty), or write the
    header and the rows to ``-`` (stdout) or a stream; returns the rows written. Raises ``InputError`` for a file
    that is not an execution log."""
    rows = log_rows(fills)
    if target == "-" or not isinstance(target, str):
        handle = sys.stdout if target == "-" else target
        _write(rows, handle, header=True)
        handle.flush()
        return len(rows)
    check_execution_log(target)
    new = not _first_line(target)
    with open(target, "a", newline="") as handle:
        if not new and not _ends_with_newline(target):
            handle.write("\n")
        _write(rows, handle, header=new)
    return len(rows)


def _write(rows: list[dict[str, object]], handle: IO[str], header: bool) -> None:
    writer = csv.DictWriter(handle, fieldnames=LOG_COLUMNS, lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(rows)


def _first_line(path: str) -> str:
    """The file's first line without its line end; '' when the file is missing, empty or blank."""
    try:
        with open(path, newline="") as handle:
            return handle.readline().strip()
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--log {path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None


def _ends_with_newline(path: str) -> bool:
    with open(path, "rb") as handle:
        if handle.seek(0, os.SEEK_END) == 0:
            return True
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"
