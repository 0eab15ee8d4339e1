"""Output policy. Stdout is data (tables, CSV, JSON); stderr is talk (logs, progress, summaries, errors).

What commands use:

- ``table(rows, columns, title)``: a human table on stdout, or on stderr once the command said
  ``stdout_carries_data()`` (it writes CSV/JSON to stdout);
- ``say(text)``: one summary line on stderr;
- ``progress()``: a progress bar on stderr on a terminal; off a terminal, a plain line at most every
  ``PLAIN_PROGRESS_EVERY_S`` seconds;
- ``print_json(obj)``, ``write_csv_rows(rows, columns)``: data on stdout;
- ``error(message)``: the one ``error: ...`` line (the shell calls it).

Under ``-q`` tables, summaries and progress are silent; errors still print. Numbers go through ``clean_number``
(``-78.00000000000864`` → ``-78.0``). Rich is imported only when something is drawn on a terminal or as a
table, so the shell stays light. Off a terminal, log lines are plain:
``2026-12-05T23:22:04Z WARNING ibkrtool.x: message``.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import IO, Any

from ibkrtool.settings import mask_url

# Console width when not on a terminal (cron, CI, Airflow logs, pipes): rich's 80 columns would cut table cells.
LOG_WIDTH = 160
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_DATEFMT = "%Y-%m-%dT%H:%M:%SZ"
PLAIN_PROGRESS_EVERY_S = 5.0
SIGNIFICANT_DIGITS = 12
# Loggers of the IB client library: its connection errors repeat what our one error line says. Shown with -vv.
CLIENT_LOGGERS = ("ib_async", "ib_insync", "eventkit")

_policy = {"quiet": False, "stdout_data": False}
_consoles: dict[str, Any] = {}


# ----------------------------------------------------------------------------------------------- policy


def set_quiet(quiet: bool) -> None:
    """``-q``: tables, summaries and progress are silent (errors still print)."""
    _policy["quiet"] = quiet
    for console in _consoles.values():
        console.quiet = quiet


def is_quiet() -> bool:
    return bool(_policy["quiet"])


def stdout_carries_data(carries: bool = True) -> None:
    """Say that this command writes data (CSV, JSON) to stdout: human tables then go to stderr."""
    _policy["stdout_data"] = carries


def _console(to_stderr: bool) -> Any:
    from rich.console import Console

    console = Console(stderr=to_stderr, soft_wrap=True)
    if not console.is_terminal and not _columns_set():
        console = Console(stderr=to_stderr, soft_wrap=True, width=LOG_WIDTH)
    console.quiet = is_quiet()
    return console


def _columns_set() -> bool:
    import os

    return "COLUMNS" in os.environ


def __getattr__(name: str) -> Any:
    """``render.stdout`` / ``render.stderr``: rich consoles, made (and rich imported) on first use."""
    if name in ("stdout", "stderr"):
        if name not in _consoles:
            _consoles[name] = _console(name == "stderr")
        return _consoles[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# ----------------------------------------------------------------------------------------------- numbers


def clean_number(value: Any) -> Any:
    """``value`` without binary float noise (12 significant digits): ``-78.00000000000864`` → ``-78.0``,
    ``0.1 + 0.2`` → ``0.3``. NumPy scalars become Python numbers; anything else is returned as is."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (TypeError, ValueError):
            return value
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    return value


def _clean(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {key: _clean(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_clean(value) for value in data]
    return clean_number(data)


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return clean_number(value)


def _cell(value: Any) -> str:
    return "" if value is None else str(_plain(value))


# ----------------------------------------------------------------------------------------------- data


def print_json(data: Any) -> None:
    """Write ``data`` as JSON to stdout (dates in ISO 8601, floats without noise)."""
    sys.stdout.write(json.dumps(_clean(data), default=_plain, indent=2) + "\n")
    sys.stdout.flush()


def write_csv_rows(rows: Iterable[Mapping[str, Any]], columns: Sequence[str], out: IO[str] | None = None) -> int:
    """Write ``rows`` as CSV (header first) to ``out`` (default stdout, which then carries data); returns rows."""
    if out is None:
        stdout_carries_data()
        out = sys.stdout
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow(_cell(row.get(column)) for column in columns)
        count += 1
    out.flush()
    return count


# ----------------------------------------------------------------------------------------------- talk


def table(rows: Iterable[Mapping[str, Any]], columns: Sequence[str], title: str | None = None) -> None:
    """A human table: stdout, or stderr when stdout carries data; silent under -q."""
    if is_quiet():
        return
    print_table(rows, columns, title, console=__getattr__("stderr" if _policy["stdout_data"] else "stdout"))


def say(text: str) -> None:
    """One summary line on stderr; silent under -q."""
    if is_quiet():
        return
    if _isatty(sys.stderr):
        __getattr__("stderr").print(text, markup=False, highlight=False)
    else:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def error(message: str) -> None:
    """The one ``error: ...`` line on stderr (passwords in URLs masked); printed under -q too."""
    text = mask_url(message)
    if _isatty(sys.stderr):
        from rich.console import Console
        from rich.markup import escape

        Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(text)}", highlight=False)
    else:
        sys.stderr.write(f"error: {text}\n")
        sys.stderr.flush()


def print_table(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[str], title: str | None = None, console: Any = None
) -> None:
    """Render rows as a rich table (numbers right-aligned, without float noise) on ``console`` (default
    stdout). Silent under -q."""
    from rich.table import Table

    console = console if console is not None else __getattr__("stdout")
    if is_quiet():
        return
    table_ = Table(title=title, header_style="bold")
    rows = list(rows)
    for col in columns:
        numeric = bool(rows) and all(isinstance(r.get(col), (int, float)) for r in rows if r.get(col) is not None)
        table_.add_column(col, justify="right" if numeric else "left")
    for row in rows:
        table_.add_row(*(_cell(row.get(c)) for c in columns))
    console.print(table_)


class PlainProgress:
    """``progress()`` off a terminal: the subset of rich's ``Progress`` the commands use, as a plain line on
    stderr at most every ``every_s`` seconds (and none under -q)."""

    def __init__(self, every_s: float = PLAIN_PROGRESS_EVERY_S, clock: Any = time.monotonic) -> None:
        self.every_s, self.clock = every_s, clock
        self.tasks: dict[int, dict[str, Any]] = {}
        self._last = clock()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def add_task(self, description: str, total: float | None = None, completed: float = 0, **fields: Any) -> int:
        task_id = len(self.tasks)
        self.tasks[task_id] = {"description": description, "total": total, "completed": completed, **fields}
        return task_id

    def update(self, task_id: int, *, advance: float | None = None, **fields: Any) -> None:
        task = self.tasks[task_id]
        task.update({k: v for k, v in fields.items() if v is not None or k in ("total",)})
        if advance:
            task["completed"] = (task.get("completed") or 0) + advance
        self._maybe_print(task)

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def _maybe_print(self, task: Mapping[str, Any]) -> None:
        now = self.clock()
        if is_quiet() or now - self._last < self.every_s:
            return
        self._last = now
        done = clean_number(task.get("completed") or 0)
        total = task.get("total")
        detail = task.get("detail") or ""
        stamp = time.strftime(LOG_DATEFMT, time.gmtime())
        line = f"{stamp} {task['description']}: {done}" + (f"/{total}" if total is not None else "")
        sys.stderr.write(line + (f" {detail}" if detail else "") + "\n")
        sys.stderr.flush()


def progress(transient: bool = False, eta: bool = True) -> Any:
    """A progress bar on stderr with done/total, elapsed and ETA on a terminal (disabled under -q); off a
    terminal a ``PlainProgress``. ``eta=False`` leaves out rich's extrapolated time remaining, for a command that
    shows its own (better) estimate in the ``detail`` field."""
    if not _isatty(sys.stderr):
        return PlainProgress()
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        *((TimeRemainingColumn(),) if eta else ()),
        console=__getattr__("stderr"),
        transient=transient,
        disable=is_quiet(),
    )


# ----------------------------------------------------------------------------------------------- logging


class _MaskSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_url(record.getMessage())
        record.args = ()
        return True


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is now (test runners swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def plain_formatter() -> logging.Formatter:
    formatter = logging.Formatter(LOG_FORMAT, datefmt=LOG_DATEFMT)
    formatter.converter = time.gmtime
    return formatter


def configure_logging(verbosity: int) -> None:
    """-q → errors only, default → warnings, -v → info, -vv → debug. Passwords in URLs are masked. Sets the
    output policy for this invocation (quiet, stdout not yet carrying data). The IB client library's own
    loggers are silenced unless -vv: the gateway's failures reach the user as our one error line."""
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    if verbosity < -1:
        level = logging.CRITICAL
    set_quiet(verbosity < 0)
    stdout_carries_data(False)
    if _isatty(sys.stderr):
        from rich.console import Console
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(console=Console(stderr=True), show_path=False,
                                               rich_tracebacks=False, markup=False, log_time_format="%H:%M:%S")
    else:
        handler = logging.StreamHandler(_CurrentStderr())  # type: ignore[arg-type]
        handler.setFormatter(plain_formatter())
    handler.addFilter(_MaskSecrets())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_ibkrtool", False):
            root.removeHandler(old)
    handler._ibkrtool = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("ibkrtool").setLevel(level)
    for name in CLIENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbosity >= 2 else logging.CRITICAL)
