"""Output helpers. Stdout is data (tables, CSV, JSON); stderr is talk (logs, progress, summaries)."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from ibkrtool.settings import mask_url

# Log width when not on a terminal (cron, CI, Airflow logs, pipes): rich's 80 columns would cut table cells.
LOG_WIDTH = 160


def _console(to_stderr: bool) -> Console:
    console = Console(stderr=to_stderr, soft_wrap=True)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(stderr=to_stderr, soft_wrap=True, width=LOG_WIDTH)
    return console


stdout = _console(False)
stderr = _console(True)


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def print_json(data: Any) -> None:
    """Write ``data`` as JSON to stdout (dates in ISO 8601)."""
    sys.stdout.write(json.dumps(data, default=_plain, indent=2) + "\n")
    sys.stdout.flush()


def print_table(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[str], title: str | None = None, console: Console = stdout
) -> None:
    """Render rows as a rich table; numbers right-aligned."""
    table = Table(title=title, header_style="bold")
    rows = list(rows)
    for col in columns:
        numeric = bool(rows) and all(isinstance(r.get(col), (int, float)) for r in rows if r.get(col) is not None)
        table.add_column(col, justify="right" if numeric else "left")
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(_plain(row.get(c))) for c in columns))
    console.print(table)


def progress(transient: bool = False) -> Progress:
    """A progress bar on stderr with done/total, elapsed and ETA."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=transient,
        disable=not stderr.is_terminal and False,
    )


class _MaskSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_url(record.getMessage())
        record.args = ()
        return True


def configure_logging(verbosity: int) -> None:
    """-q → errors only, default → warnings, -v → info, -vv → debug. Passwords in URLs are masked."""
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    if verbosity < -1:
        level = logging.CRITICAL
    handler = RichHandler(console=stderr, show_path=False, rich_tracebacks=False, markup=False)
    handler.addFilter(_MaskSecrets())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_ibkrtool", False):
            root.removeHandler(old)
    handler._ibkrtool = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("ibkrtool").setLevel(level)
