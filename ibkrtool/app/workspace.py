"""The ``Workspace``: what every command used to build for itself, owned once.

It holds the settings, opens the database (writers initialise or upgrade it; readers of a database without the
schema get one line telling them to run ``ibkrtool db init``), keeps the run journal (``runs``; rows left
``running`` by dead processes are closed as ``abandoned`` first), runs the event loop with the garbage collector
kept quiet, and gives the clock. Signals belong to the process, so the CLI installs their handlers (SIGTERM is
handled like Ctrl-C there); a Python user keeps control of their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from ibkrtool.errors import StoreError
from ibkrtool.settings import Settings, load_settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from ibkrtool.store.runs import RunRecord

T = TypeVar("T")
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The machine's clock, tz-aware UTC."""
    return datetime.now(timezone.utc)


class Workspace:
    """Settings, database, run journal, event loop and clock for one or more commands.

    ``Workspace()`` resolves settings as the CLI does (``IBKRTOOL_*`` environment, then config file);
    ``Workspace(Settings(db_url=...))`` takes them as given. Use it as a context manager to close the database.
    """

    def __init__(self, settings: Settings | None = None, clock: Clock = utc_now) -> None:
        self.settings = settings if settings is not None else load_settings()
        self.clock = clock
        self._engine: Engine | None = None
        self._ready = False
        self._swept = False

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the database connections."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
            self._ready = False

    @property
    def db_label(self) -> str:
        """The database URL with its password masked, as shown to users."""
        return self.settings.masked_db_url

    def store(self, write: bool = True) -> Engine:
        """The database engine: initialised or upgraded for a writer, checked for the schema for a reader.

        Raises ``StoreError`` (exit 5) when unreachable, when an SQLite file's folder does not exist, or (reader)
        when the database has no ibkrtool schema or an older one.
        """
        if self._engine is not None and (self._ready or not write):
            return self._engine
        from ibkrtool.store.engine import open_engine, sqlite_path
        from ibkrtool.store.migrate import init_db, schema_version
        from ibkrtool.store.tables import SCHEMA_VERSION

        if not write and self._engine is None:
            path = sqlite_path(self.settings.db_url)
            if path is not None and path.parent.is_dir() and not path.exists():
                raise self._no_schema()
        engine = self._engine or open_engine(self.settings.db_url)
        self._engine = engine
        if write:
            init_db(engine)
            self._ready = True
            return engine
        version = schema_version(engine)
        if version == 0:
            raise self._no_schema()
        if version < SCHEMA_VERSION:
            raise StoreError(f"database {self.db_label} has schema version {version}, this ibkrtool needs "
                             f"{SCHEMA_VERSION}: run 'ibkrtool db init'")
        self._ready = True
        return engine

    def _no_schema(self) -> StoreError:
        return StoreError(f"database {self.db_label} has no ibkrtool schema: run 'ibkrtool db init'")

    @contextmanager
    def journal(self, command: str, args: Mapping[str, Any]) -> Iterator[RunRecord]:
        """A ``runs`` row for a writing command, closed as ok, failed or interrupted when the block ends."""
        from ibkrtool.store.runs import mark_abandoned, track_run

        engine = self.store(write=True)
        if not self._swept:
            mark_abandoned(engine)
            self._swept = True
        with track_run(engine, command, args) as record:
            yield record

    def run_async(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on a new event loop, with full GC passes kept off it (``runtime.steady_gc``)."""
        from ibkrtool.runtime import steady_gc

        with steady_gc():
            return asyncio.run(coroutine)
