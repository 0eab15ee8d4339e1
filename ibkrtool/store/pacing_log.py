"""The historical-request log (table ``hist_requests``): IB's pacing budget survives restarts.

Each historical request sent is booked here with its UTC send time; a new backfill loads the last few minutes
for the same gateway before its first request, so two backfills back to back do not break IB's rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from ibkrtool.errors import StoreError
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


def prune_requests(engine: Engine, before: datetime) -> int:
    """Delete requests booked before ``before`` (UTC); they no longer count for pacing. Returns rows deleted."""
    if before.tzinfo is None:
        before = before.replace(tzinfo=timezone.utc)
    try:
        with engine.begin() as conn:
            return conn.execute(delete(hist_requests).where(hist_requests.c.requested_at < before)).rowcount
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot prune hist_requests: {exc.__class__.__name__}") from exc
