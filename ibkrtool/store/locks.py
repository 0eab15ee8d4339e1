"""The order lock: one process at a time places orders for one (account, instrument), across processes and hosts
that share the database.

``execute`` holds it for its whole placing phase (read IB's state, decide, place, wait, record), so a second
``execute`` for the same account and instrument waits, then sees the first one's orders and position.

* PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``, polled so the event loop keeps running) on
  ``advisory_key(key)``, a stable signed 64-bit hash; released with ``pg_advisory_unlock`` in ``finally`` (and by
  the server if the process dies, with its session).
* SQLite: a row of ``order_locks`` (owner pid and host), taken in a ``BEGIN IMMEDIATE`` transaction; a row whose
  owner is gone on this host (killed, see ``store.runs.mark_abandoned``) is taken over; deleted in ``finally``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timezone

from sqlalchemy import delete, insert, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from ibkrtool.errors import StoreError
from ibkrtool.store.engine import is_postgres
from ibkrtool.store.runs import _alive
from ibkrtool.store.tables import order_locks

log = logging.getLogger(__name__)
Sleep = Callable[[float], Awaitable[None]]


class LockBusy(StoreError):
    """Another process held the lock for longer than the caller was willing to wait (exit 5)."""


def order_lock_key(account: str, conid: int) -> str:
    """The lock's name for orders of ``conid`` in ``account``."""
    return f"orders {account} {conid}"


def advisory_key(key: str) -> int:
    """A stable signed 64-bit hash of ``key``: the PostgreSQL advisory-lock id."""
    digest = hashlib.blake2b(f"ibkrtool {key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@asynccontextmanager
async def order_lock(engine: Engine, key: str, wait_s: float = 300.0, poll_s: float = 0.05,
                     sleep: Sleep = asyncio.sleep) -> AsyncIterator[None]:
    """Hold the lock ``key`` for the block (see module doc), waiting at most ``wait_s`` seconds (polling every
    ``poll_s``) for another holder to let go. Raises ``LockBusy`` after the wait, ``StoreError`` on a database
    error; always released when the block ends, also on errors and interruptions."""
    if is_postgres(engine):
        async with _advisory(engine, key, wait_s, poll_s, sleep):
            yield
        return
    await _wait(lambda: _take_row(engine, key), key, wait_s, poll_s, sleep)
    try:
        yield
    finally:
        _drop_row(engine, key)


async def _wait(attempt: Callable[[], str | None], key: str, wait_s: float, poll_s: float, sleep: Sleep) -> None:
    """Call ``attempt`` (None = taken, else who holds it) until it takes the lock or ``wait_s`` has passed."""
    deadline, told = time.monotonic() + wait_s, False
    while (holder := attempt()) is not None:
        if time.monotonic() > deadline:
            raise LockBusy(f"the order lock {key!r} is held by {holder} for more than {wait_s:g} s; nothing was "
                           "sent (if that process is gone, try again: a dead owner on this host is taken over)")
        if not told:
            log.info("waiting for the order lock %r, held by %s", key, holder)
            told = True
        await sleep(poll_s)


@asynccontextmanager
async def _advisory(engine: Engine, key: str, wait_s: float, poll_s: float, sleep: Sleep) -> AsyncIterator[None]:
    lock_id = advisory_key(key)
    try:
        conn = engine.connect()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot take the order lock {key!r}: {exc.__class__.__name__}") from exc
    try:
        await _wait(lambda: _try_advisory(conn, lock_id), key, wait_s, poll_s, sleep)
        try:
            yield
        finally:
            _unlock(conn, lock_id)
    finally:
        conn.close()


def _try_advisory(conn: Connection, lock_id: int) -> str | None:
    try:
        got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_id}).scalar()
        conn.commit()  # the lock is the session's: it outlives the transaction, which must not stay open
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot take the order lock: {exc.__class__.__name__}") from exc
    return None if got else "another session (PostgreSQL advisory lock)"


def _unlock(conn: Connection, lock_id: int) -> None:
    try:
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_id})
        conn.commit()
    except SQLAlchemyError:  # never return a connection still holding the lock to the pool
        log.warning("could not release the order lock; dropping its connection", exc_info=True)
        conn.invalidate()


def _take_row(engine: Engine, key: str) -> str | None:
    """Take the row lock in one ``BEGIN IMMEDIATE`` transaction: None when taken, else who holds it."""
    me, host = os.getpid(), socket.gethostname()
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            row = conn.execute(select(order_locks.c.owner_pid, order_locks.c.owner_host)
                               .where(order_locks.c.lock_key == key)).first()
            if row is not None and not (row.owner_host == host and not _alive(int(row.owner_pid))):
                conn.commit()
                return f"process {row.owner_pid} on {row.owner_host}"
            if row is not None:
                log.warning("order lock %r: its owner, process %s, is gone; taking it over", key, row.owner_pid)
                conn.execute(delete(order_locks).where(order_locks.c.lock_key == key))
            conn.execute(insert(order_locks).values(lock_key=key, owner_pid=me, owner_host=host,
                                                    acquired_at=datetime.now(timezone.utc)))
            conn.commit()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot take the order lock {key!r}: {exc.__class__.__name__}") from exc
    return None


def _drop_row(engine: Engine, key: str) -> None:
    try:
        with engine.begin() as conn:
            conn.execute(delete(order_locks).where(order_locks.c.lock_key == key,
                                                   order_locks.c.owner_pid == os.getpid(),
                                                   order_locks.c.owner_host == socket.gethostname()))
    except SQLAlchemyError:  # a row left behind is taken over by the next process on this host (pid gone)
        log.warning("could not release the order lock %r", key, exc_info=True)
