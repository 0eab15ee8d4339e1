"""Open the database named by a URL: SQLite (embedded default) or PostgreSQL (always through psycopg2)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from ibkrtool.errors import StoreError
from ibkrtool.settings import mask_url
from ibkrtool.store.tables import SCHEMA

HINT = "check --db / IBKRTOOL_DB_URL"
CONNECT_TIMEOUT_S = 5
# psycopg2/libpq failure texts → the short reason users see.
_PG_REASONS = (
    ("connection refused", "connection refused"),
    ("password authentication failed", "password authentication failed"),
    ("no password supplied", "the server wants a password"),
    ("could not translate host name", "unknown host"),
    ("name or service not known", "unknown host"),
    ("timeout expired", "timed out"),
    ("no route to host", "no route to host"),
    ("no pg_hba.conf entry", "the server refuses this host/user (pg_hba.conf)"),
)


def normalise_url(url: str | URL) -> URL:
    """Parse ``url``; ``postgres://`` and ``postgresql://`` become ``postgresql+psycopg2://``.

    Raises ``StoreError`` for an unparsable URL (message with the password masked).
    """
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        raise StoreError(f"database URL {mask_url(str(url))!r} is not understood; {HINT}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg2")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(f"database {parsed.get_backend_name()!r} is not supported: use sqlite:/// or postgresql://")
    return parsed


def is_postgres(bind: Engine | Connection) -> bool:
    """True when ``bind`` talks to PostgreSQL (else it is SQLite)."""
    return bind.dialect.name == "postgresql"


def open_engine(url: str | URL, check: bool = True, create_dirs: bool = False, **kwargs: Any) -> Engine:
    """An Engine for ``url``, connectivity checked unless ``check=False``.

    SQLite: the file's folder must exist (``create_dirs=True``, for ``db init`` only, creates it): a mistyped path
    is refused rather than silently becoming a new empty database; WAL journal, foreign keys and a busy timeout
    are switched on; tables have no schema (``ibkr_data`` is translated away). PostgreSQL: psycopg2 with a 5 s
    connect timeout.
    Raises ``StoreError`` with one line naming host, port and user, the password masked.
    """
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(parsed, create_dirs, **kwargs)
    else:
        connect_args = {"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "ibkrtool"}
        engine = create_engine(parsed, connect_args=connect_args, pool_pre_ping=True, **kwargs)
    if check:
        check_connection(engine)
    return engine


def sqlite_path(url: str | URL) -> Path | None:
    """The file of an SQLite URL (None for PostgreSQL, in-memory and ``file:`` URIs)."""
    parsed = normalise_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def _sqlite_engine(url: URL, create_dirs: bool, **kwargs: Any) -> Engine:
    path = sqlite_path(url)
    if path is not None and not path.parent.is_dir():
        if not create_dirs:
            raise StoreError(f"cannot open SQLite database {path}: folder {path.parent} does not exist — {HINT} "
                             "(`ibkrtool db init` creates it)")
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **kwargs).execution_options(schema_translate_map={SCHEMA: None})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")  # safe with WAL: a crash loses at most the last commits
        cur.execute("PRAGMA busy_timeout=10000")
        cur.close()

    return engine


def check_connection(engine: Engine) -> None:
    """Run ``SELECT 1``; raise ``StoreError`` with one actionable line if the database cannot be reached."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as exc:
        raise connection_error(engine.url, exc) from None


def connection_error(url: URL, exc: BaseException) -> StoreError:
    """The one-line ``StoreError`` for a failed connection to ``url`` (password never shown)."""
    detail = str(getattr(exc, "orig", None) or exc)
    if url.get_backend_name() == "sqlite":
        reason = detail.strip().splitlines()[0] if detail.strip() else type(exc).__name__
        return StoreError(f"cannot open SQLite database {url.database}: {reason} — {HINT}")
    lowered = detail.lower()
    reason = next((short for needle, short in _PG_REASONS if needle in lowered), None)
    if reason is None:
        match = re.search(r'database "([^"]+)" does not exist', detail)
        first = detail.strip().splitlines()[0] if detail.strip() else type(exc).__name__
        reason = f'database "{match[1]}" does not exist' if match else re.sub(r"\s+", " ", first)
    password = "password ***" if url.password else "no password"
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    message = f"cannot connect to PostgreSQL at {where} as '{url.username or ''}' ({password}): {reason} — {HINT}"
    if url.password and len(str(url.password)) >= 4:  # belt and braces: libpq never echoes it
        message = message.replace(str(url.password), "***")
    return StoreError(mask_url(message))


@contextmanager
def transaction(bind: Engine | Connection, failure: str) -> Iterator[Connection]:
    """The caller's transaction when given a Connection, else a new one (committed on success, rolled back on any
    error). A database error leaves as one ``StoreError`` line: ``<failure>: <first line of the error>``."""
    try:
        if isinstance(bind, Connection):
            yield bind
        else:
            with bind.begin() as conn:
                yield conn
    except DBAPIError as exc:
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise StoreError(f"{failure}: {first} (run `ibkrtool db init`?)") from None
