"""The ``runs`` journal: one row per writing command with its arguments (secrets removed) and how it ended."""

from __future__ import annotations

import logging
import os
import re
import socket
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine

from ibkrtool.errors import IbkrToolError
from ibkrtool.settings import mask_url
from ibkrtool.store import tables as t

log = logging.getLogger(__name__)
_SECRET_KEY = re.compile(r"pass|secret|token|key|credential|db_url|^db$|dsn", re.IGNORECASE)


def clean_args(args: Mapping[str, Any]) -> dict[str, Any]:
    """``args`` fit for the journal: secret-looking keys dropped, URLs with passwords masked, values JSON-plain."""
    clean: dict[str, Any] = {}
    for key, value in args.items():
        if _SECRET_KEY.search(key):
            continue
        if value is None or isinstance(value, (bool, int, float)):
            clean[key] = value
        elif isinstance(value, (list, tuple)):
            clean[key] = [mask_url(str(v)) for v in value]
        else:
            clean[key] = mask_url(str(value))
    return clean


@dataclass
class RunRecord:
    """Handle yielded by ``track_run``; set or add to ``rows_written`` as the command writes. ``status`` is how a
    block that ends without an error is recorded: ``ok``, or ``interrupted`` for a command that stopped early on
    request (a collector told to stop) and still ends normally."""

    run_id: str
    rows_written: int = 0
    status: str = "ok"


@contextmanager
def track_run(engine: Engine, command: str, args: Mapping[str, Any]) -> Iterator[RunRecord]:
    """Record a ``runs`` row (status ``running``, committed at once) and close it on exit as ``ok``, ``failed``
    (with the error's one line, passwords masked) or ``interrupted`` (Ctrl-C). The error is re-raised.
    """
    record = RunRecord(run_id=uuid.uuid4().hex)
    with engine.begin() as conn:
        conn.execute(insert(t.runs).values(run_id=record.run_id, command=command, args=clean_args(args),
                                           started_at=_now(), status="running", pid=os.getpid(),
                                           host=socket.gethostname()))
    try:
        yield record
    except KeyboardInterrupt:
        _finish(engine, record, "interrupted", "interrupted")
        raise
    except Exception as exc:
        message = str(exc) if isinstance(exc, IbkrToolError) else f"{type(exc).__name__}: {exc}"
        _finish(engine, record, "failed", mask_url(message.splitlines()[0] if message else type(exc).__name__))
        raise
    else:
        _finish(engine, record, record.status, None)


def _finish(engine: Engine, record: RunRecord, status: str, error: str | None) -> None:
    try:
        with engine.begin() as conn:
            conn.execute(update(t.runs).where(t.runs.c.run_id == record.run_id).values(
                ended_at=_now(), status=status, rows_written=record.rows_written, error=error))
    except Exception:  # the journal must never hide the command's own outcome or error
        if status == "ok":
            raise
        log.warning("could not record the end of run %s", record.run_id, exc_info=True)


def mark_abandoned(engine: Engine) -> int:
    """Close as ``abandoned`` the ``running`` rows of this host whose process no longer exists; returns how many.

    A killed command (``kill -9``, a reboot) cannot close its own row. Rows of other hosts are left alone: their
    processes cannot be seen from here.
    """
    host = socket.gethostname()
    with engine.begin() as conn:
        rows = conn.execute(select(t.runs.c.run_id, t.runs.c.pid).where(
            t.runs.c.status == "running", t.runs.c.host == host, t.runs.c.pid.is_not(None))).all()
        gone = [(run_id, pid) for run_id, pid in rows if not _alive(int(pid))]
        for run_id, pid in gone:
            conn.execute(update(t.runs).where(t.runs.c.run_id == run_id, t.runs.c.status == "running").values(
                status="abandoned", ended_at=_now(), error=f"process {pid} ended without closing the run"))
    return len(gone)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _now() -> datetime:
    return datetime.now(timezone.utc)
