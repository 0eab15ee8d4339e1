"""The PostgreSQL DDL (sql/) and the Core metadata describe the same tables; migrations are idempotent."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from ibkrtool.store import tables as t
from ibkrtool.store.engine import open_engine
from ibkrtool.store.migrate import init_db, migrations, schema_version

PG = postgresql.dialect()


def _pg_type(type_: sa.types.TypeEngine) -> str:
    return type_.compile(dialect=PG).replace("DOUBLE PRECISION", "FLOAT").replace("DOUBLE", "FLOAT")


def test_postgres_ddl_matches_core_metadata(pg_url: str) -> None:
    engine = open_engine(pg_url)
    init_db(engine)
    inspector = sa.inspect(engine)
    live = set(inspector.get_table_names(schema=t.SCHEMA)) - {n for n in inspector.get_table_names(schema=t.SCHEMA)
                                                              if n.startswith("bars_")}
    assert live == {table.name for table in t.metadata.sorted_tables}
    for table in t.metadata.sorted_tables:
        columns = inspector.get_columns(table.name, schema=t.SCHEMA)
        assert [c["name"] for c in columns] == [c.name for c in table.columns], table.name
        for found, declared in zip(columns, table.columns, strict=True):
            where = f"{table.name}.{declared.name}"
            assert _pg_type(found["type"]) == _pg_type(declared.type), where
            assert found["nullable"] == declared.nullable, where
        pk = inspector.get_pk_constraint(table.name, schema=t.SCHEMA)["constrained_columns"]
        assert pk == [c.name for c in table.primary_key.columns], table.name
        indexes = {i["name"] for i in inspector.get_indexes(table.name, schema=t.SCHEMA)}
        assert {i.name for i in table.indexes} <= indexes, table.name
    engine.dispose()


def test_bars_is_partitioned_by_month_with_a_default(pg_url: str) -> None:
    engine = open_engine(pg_url)
    init_db(engine)
    with engine.connect() as conn:
        strategy = conn.execute(sa.text(
            "SELECT partstrat FROM pg_partitioned_table WHERE partrelid = 'ibkr_data.bars'::regclass")).scalar()
        default = conn.execute(sa.text("SELECT to_regclass('ibkr_data.bars_default')")).scalar()
    assert strategy == "r"
    assert default is not None
    engine.dispose()


def test_schema_version_is_the_newest_migration() -> None:
    assert migrations()[-1][0] == t.SCHEMA_VERSION
    assert [m[0] for m in migrations()] == list(range(1, t.SCHEMA_VERSION + 1))


def test_init_is_idempotent(db_url: str) -> None:
    engine = open_engine(db_url)
    assert schema_version(engine) == 0
    assert init_db(engine) == t.SCHEMA_VERSION
    assert init_db(engine) == t.SCHEMA_VERSION
    assert schema_version(engine) == t.SCHEMA_VERSION
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.schema_version)).scalar() == t.SCHEMA_VERSION
        names = set(sa.inspect(conn).get_table_names(schema=t.SCHEMA if db_url.startswith("postgres") else None))
    assert {table.name for table in t.metadata.sorted_tables} <= names
    engine.dispose()


def test_processes_creating_one_new_sqlite_database_at_once_all_succeed(tmp_path) -> None:
    """Several commands started together on a new SQLite file (Airflow tasks, cron jobs) all find the schema."""
    import subprocess
    import sys

    for trial in range(3):
        url = f"sqlite:///{tmp_path / f'race{trial}.db'}"
        code = ("from ibkrtool.store.engine import open_engine\nfrom ibkrtool.store.migrate import init_db\n"
                f"print(init_db(open_engine({url!r})))\n")
        procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(4)]
        results = [(p.wait(timeout=120), p.stdout.read().strip(), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
        assert all(rc == 0 for rc, _, _ in results), results
        assert {out for _, out, _ in results} == {str(t.SCHEMA_VERSION)}
