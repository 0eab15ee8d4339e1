"""The historical-request log (table ``hist_requests``): IB's pacing budget, shared per gateway by every process.

Each historical request is booked here, with its UTC booking time (taken just before it is sent), by the process
that sends it, inside ``gateway_lock``: one short transaction that reads every other booking for the same gateway,
decides, and inserts. Because the check and the booking are atomic per gateway, two processes (two backfills, a
backfill and a collect's gap repairs, a run and its restart) never both take the last slot of a window.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import delete, insert, or_, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from ibkrtool.errors import StoreError
from ibkrtool.store.engine import is_postgres
from ibkrtool.store.tables import hist_requests


@dataclass(frozen=True)
class LoggedRequest:
    """One booked historical request. ``requested_at`` is tz-aware UTC."""

    requested_at: datetime
    conid: int
    bar_size: str
    what_to_show: str
    duration: str
    end_datetime: str
    weight: int = 1


def log_request(bind: Engine | Connection, gateway: str, request: LoggedRequest) -> None:
    """Book one request for ``gateway`` (``host:port``). Raises ``StoreError``."""
    row = {"gateway": gateway, **request.__dict__}
    try:
        if isinstance(bind, Engine):
            with bind.begin() as conn:
                conn.execute(insert(hist_requests), row)
        else:
            bind.execute(insert(hist_requests), row)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot record a historical request in hist_requests: {exc.__class__.__name__}") from exc


def recent_requests(engine: Engine, gateway: str, since: datetime) -> list[LoggedRequest]:
    """Requests booked for ``gateway`` at or after ``since`` (UTC), oldest first. Raises ``StoreError``."""
    t = hist_requests.c
    query = (select(t.requested_at, t.conid, t.bar_size, t.what_to_show, t.duration, t.end_datetime, t.weight)
             .where(t.gateway == gateway, t.requested_at >= since).order_by(t.requested_at))
    try:
        with engine.connect() as conn:
            return [LoggedRequest(*row) for row in conn.execute(query)]
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read hist_requests: {exc.__class__.__name__}") from exc


def prune_requests(bind: Engine | Connection, before: datetime) -> int:
    """Delete requests booked before ``before`` (UTC); they no longer count for pacing. Returns rows deleted."""
    if before.tzinfo is None:
        before = before.replace(tzinfo=timezone.utc)
    query = delete(hist_requests).where(hist_requests.c.requested_at < before)
    try:
        if isinstance(bind, Engine):
            with bind.begin() as conn:
                return conn.execute(query).rowcount
        return bind.execute(query).rowcount
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot prune hist_requests: {exc.__class__.__name__}") from exc


def lock_key(gateway: str) -> int:
    """The PostgreSQL advisory-lock key of ``gateway``'s ledger: a stable signed 64-bit hash of its name."""
    digest = hashlib.blake2b(f"ibkrtool pacing ledger {gateway}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def gateway_lock(engine: Engine, gateway: str) -> Iterator[Connection]:
    """A short write transaction holding ``gateway``'s pacing lock until it ends (commit on success, rollback
    if the body raises). Other processes booking on the same gateway wait for it.

    PostgreSQL: ``pg_advisory_xact_lock`` on ``lock_key(gateway)`` (other gateways are not blocked); SQLite:
    ``BEGIN IMMEDIATE`` (the database's single write lock, waited for up to the engine's busy timeout). Keep the
    body short: read, decide, insert. Raises ``StoreError``.
    """
    try:
        with engine.connect() as conn:
            if is_postgres(conn):
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(gateway)})
            else:  # pysqlite would begin a deferred transaction at the first write; take the write lock now
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn
            conn.commit()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot book a historical request in hist_requests: {exc.__class__.__name__}") from exc


def bookings_since(conn: Connection, gateway: str, paced_since: datetime,
                   any_since: datetime) -> list[tuple[int, LoggedRequest]]:
    """``(id, request)`` of the bookings for ``gateway``: paced ones (weight > 0) at or after ``paced_since``,
    unpaced ones at or after ``any_since`` (UTC), oldest first."""
    t = hist_requests.c
    query = (select(t.id, t.requested_at, t.conid, t.bar_size, t.what_to_show, t.duration, t.end_datetime, t.weight)
             .where(t.gateway == gateway, t.requested_at >= min(paced_since, any_since),
                    or_(t.weight > 0, t.requested_at >= any_since))
             .order_by(t.requested_at))
    return [(row[0], LoggedRequest(*row[1:])) for row in conn.execute(query)]


def insert_booking(conn: Connection, gateway: str, request: LoggedRequest) -> int:
    """Book one request for ``gateway`` inside the caller's transaction; returns the row's id."""
    result = conn.execute(insert(hist_requests).values(gateway=gateway, **request.__dict__))
    return int(result.inserted_primary_key[0])
