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
