"""Opening databases: URL normalisation, SQLite setup, one-line connection errors without passwords."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from ibkrtool.errors import StoreError
from ibkrtool.store.engine import is_postgres, normalise_url, open_engine


@pytest.mark.parametrize("url", ["postgres://u:p@h:5432/d", "postgresql://u:p@h/d", "postgresql+psycopg2://u@h/d"])
def test_postgres_urls_use_psycopg2(url: str) -> None:
    assert normalise_url(url).drivername == "postgresql+psycopg2"


def test_unsupported_backend_is_refused() -> None:
    with pytest.raises(StoreError, match="not supported"):
        normalise_url("mysql://u:p@h/d")


def test_sqlite_refuses_a_missing_folder_unless_asked_and_uses_wal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'deep' / 'er' / 'x.db'}"
    with pytest.raises(StoreError, match="does not exist"):
        open_engine(url)
    assert not (tmp_path / "deep").exists()
    engine = open_engine(url, create_dirs=True)
    with engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1
    assert (tmp_path / "deep" / "er" / "x.db").exists()
    assert not is_postgres(engine)
    engine.dispose()


def test_working_postgres(pg_url: str) -> None:
    engine = open_engine(pg_url.replace("postgresql://", "postgres://"))
    assert is_postgres(engine)
    engine.dispose()


def test_refused_connection_names_host_port_user_and_masks_password() -> None:
    with pytest.raises(StoreError) as caught:
        open_engine("postgresql://alice:Sup3rSecret@127.0.0.1:1/market")
    message = str(caught.value)
    assert message == ("cannot connect to PostgreSQL at 127.0.0.1:1 as 'alice' (password ***): connection refused "
                       "— check --db / IBKRTOOL_DB_URL")


def test_missing_database_is_named(pg_url: str) -> None:
    url = sa.engine.make_url(pg_url).set(database="nope_not_here", password="pw-xyz-1")
    with pytest.raises(StoreError) as caught:
        open_engine(url)
    assert 'database "nope_not_here" does not exist' in str(caught.value)
    assert "pw-xyz-1" not in str(caught.value)
