"""Monthly partitions of ``ibkr_data.bars`` on PostgreSQL, created on demand by the writer.

A month without its partition would land in ``bars_default``; creating the partition later then fails while the
default partition holds rows of that month. So when the default already has rows in the month, they are moved
into a new standalone table which is then ATTACHed as the month's partition, all in the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import text
from sqlalchemy.engine import Connection

_LOCK_KEY = 0x1B4B_7002  # pg_advisory_xact_lock key: one partition creator at a time
UTC = timezone.utc


def month_starts(first: datetime, last: datetime) -> list[datetime]:
    """Every month start (UTC) from the month of ``first`` to the month of ``last``, inclusive."""
    months, cur = [], datetime(first.year, first.month, 1, tzinfo=UTC)
    while cur <= last:
        months.append(cur)
        cur = next_month(cur)
    return months


def next_month(start: datetime) -> datetime:
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)


def partition_name(month: datetime) -> str:
    return f"bars_{month.year:04d}_{month.month:02d}"


def existing_partitions(conn: Connection) -> set[str]:
    """Names of the partitions attached to ``ibkr_data.bars``."""
    rows = conn.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'ibkr_data.bars'::regclass"))
    return {r[0] for r in rows}


def ensure_partitions(conn: Connection, first: datetime, last: datetime) -> list[str]:
    """Create the monthly partitions covering ``first``..``last`` (UTC) that are missing; returns their names.

    Runs in the caller's transaction; concurrent writers serialise on an advisory lock.
    """
    wanted = {partition_name(m): m for m in month_starts(first, last)}
    missing = set(wanted) - existing_partitions(conn)
    if not missing:
        return []
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    missing -= existing_partitions(conn)  # another writer may have made them while we waited
    for name in sorted(missing):
        _create(conn, name, wanted[name])
    return sorted(missing)


def _create(conn: Connection, name: str, month: datetime) -> None:
    lo, hi = month.isoformat(), next_month(month).isoformat()
    bounds = f"FOR VALUES FROM ('{lo}') TO ('{hi}')"  # generated from datetimes, never from user text
    stray = conn.execute(text("SELECT EXISTS (SELECT 1 FROM ibkr_data.bars_default WHERE ts >= :lo AND ts < :hi)"),
                         {"lo": month, "hi": next_month(month)}).scalar()
    if not stray:
        conn.execute(text(f"CREATE TABLE ibkr_data.{name} PARTITION OF ibkr_data.bars {bounds}"))
        return
    conn.execute(text(f"CREATE TABLE ibkr_data.{name} (LIKE ibkr_data.bars INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"))
    params = {"lo": month, "hi": next_month(month)}
    conn.execute(text(f"INSERT INTO ibkr_data.{name} SELECT * FROM ibkr_data.bars_default "
                      "WHERE ts >= :lo AND ts < :hi"), params)
    conn.execute(text("DELETE FROM ibkr_data.bars_default WHERE ts >= :lo AND ts < :hi"), params)
    conn.execute(text(f"ALTER TABLE ibkr_data.bars ATTACH PARTITION ibkr_data.{name} {bounds}"))
