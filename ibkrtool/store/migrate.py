"""Schema migrations. PostgreSQL runs the numbered ``sql/NNN_*.sql`` files in order, all pending ones inside one
transaction; SQLite is created from the Core metadata at the same version number. ``schema_version`` records each.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import func, insert, inspect, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from ibkrtool.errors import StoreError
from ibkrtool.resources import sql_dir
from ibkrtool.store import tables as t
from ibkrtool.store.engine import is_postgres
from ibkrtool.store.tables import SCHEMA, SCHEMA_VERSION, metadata

_MIGRATION = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x1B4B_7001  # pg_advisory_xact_lock key: one init at a time


def migrations(folder: Path | None = None) -> list[tuple[int, str, Path]]:
    """The ``(version, name, path)`` of every migration file, in order."""
    folder = folder or sql_dir()
    found = [(int(m[1]), m[2], p) for p in folder.iterdir() if (m := _MIGRATION.match(p.name))]
    return sorted(found)


def _current(conn: Connection) -> int:
    schema = SCHEMA if is_postgres(conn) else None
    if not inspect(conn).has_table("schema_version", schema=schema):
        return 0
    return int(conn.execute(select(func.coalesce(func.max(t.schema_version.c.version), 0))).scalar_one())


def schema_version(engine: Engine) -> int:
    """The schema version of the database (0 = not initialised). Raises ``StoreError`` if unreachable."""
    try:
        with engine.connect() as conn:
            return _current(conn)
    except DBAPIError as exc:
        raise StoreError(f"cannot read the schema version: {_first_line(exc)}") from None


def init_db(engine: Engine) -> int:
    """Bring the schema to the newest version; idempotent. Returns the version now in force.

    Raises ``StoreError`` if a migration fails (nothing of it is left behind: one transaction).
    """
    attempts = 10  # each lost race finds more of the winner's schema in place; a handful of racers settle fast
    for attempt in range(attempts):
        try:
            with engine.begin() as conn:
                if is_postgres(conn):
                    return _migrate_postgres(conn)
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # one migrating writer at a time; others wait, then see it
                return _migrate_sqlite(conn)
        except DBAPIError as exc:
            # Another process created the same new SQLite database between our check and our DDL (PostgreSQL
            # serialises migrations with an advisory lock): its schema is in place now, so read it again.
            if attempt == attempts - 1 or is_postgres(engine) or not _lost_race(exc):
                raise StoreError(f"database migration failed: {_first_line(exc)}") from None
    raise AssertionError("unreachable")


def _migrate_postgres(conn: Connection) -> int:
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    current = _current(conn)
    for version, name, path in migrations():
        if version <= current:
            continue
        # The raw DB-API cursor runs the whole multi-statement file without parameter interpolation.
        conn.connection.driver_connection.cursor().execute(path.read_text())
        conn.execute(insert(t.schema_version).values(version=version, name=name, applied_at=_now()))
        current = version
    return current


def _migrate_sqlite(conn: Connection) -> int:
    current = _current(conn)
    if current >= SCHEMA_VERSION:
        return current
    metadata.create_all(conn)
    _add_missing_columns(conn)
    names = {v: n for v, n, _ in migrations()}
    rows = [{"version": v, "name": names.get(v, f"v{v}"), "applied_at": _now()}
            for v in range(current + 1, SCHEMA_VERSION + 1)]
    conn.execute(insert(t.schema_version), rows)
    return SCHEMA_VERSION


def _add_missing_columns(conn: Connection) -> None:
    """SQLite counterpart of ``ALTER TABLE … ADD COLUMN`` migrations: ``create_all`` makes missing tables only."""
    inspector = inspect(conn)
    for table in metadata.sorted_tables:
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present:
                kind = column.type.compile(dialect=conn.dialect)
                conn.execute(text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'))


def _lost_race(exc: DBAPIError) -> bool:
    text_ = str(exc.orig or exc)
    return "already exists" in text_ or "UNIQUE constraint failed" in text_ or "duplicate column" in text_


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _first_line(exc: DBAPIError) -> str:
    text_ = str(exc.orig or exc).strip()
    return text_.splitlines()[0] if text_ else type(exc).__name__
