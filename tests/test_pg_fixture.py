import sqlalchemy as sa

from tests.plugins.pg import pg_engine


def test_db_url_is_a_working_empty_database(db_url: str) -> None:
    engine = pg_engine(db_url) if db_url.startswith("postgresql") else sa.create_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT 1")).scalar() == 1
        assert not sa.inspect(conn).get_table_names()
    engine.dispose()
