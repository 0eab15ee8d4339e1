"""SQLAlchemy Core tables. They mirror ``sql/001_schema.sql`` (PostgreSQL, schema ``ibkr_data``) column for column;
``tests/store/test_schema.py`` checks the two agree. On SQLite the same tables are created without the schema
(``schema_translate_map={"ibkr_data": None}``, see ``engine.open_engine``).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    Double,
    Identity,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

from ibkrtool.store.types import UtcTimestamp

SCHEMA = "ibkr_data"
SCHEMA_VERSION = 4
"""The newest migration; equals the highest number in ``sql/`` (SQLite is created at this version)."""

metadata = MetaData(schema=SCHEMA)
Json = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-numbers an INTEGER PRIMARY KEY, so identity columns are INTEGER there.
Serial = BigInteger().with_variant(Integer(), "sqlite")

schema_version = Table(
    "schema_version", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("name", Text, nullable=False),
    Column("applied_at", UtcTimestamp, nullable=False),
)

contracts = Table(
    "contracts", metadata,
    Column("conid", BigInteger, primary_key=True, autoincrement=False),
    Column("symbol", Text, nullable=False),
    Column("sec_type", Text, nullable=False),
    Column("exchange", Text, nullable=False),
    Column("primary_exchange", Text, nullable=False),
    Column("currency", Text, nullable=False),
    Column("local_symbol", Text, nullable=False),
    Column("trading_class", Text, nullable=False),
    Column("min_tick", Double, nullable=False),
    Column("time_zone", Text, nullable=False),
    Column("details", Json, nullable=False),
    Column("updated_at", UtcTimestamp, nullable=False),
    Index("contracts_symbol_idx", "symbol"),
)

bars = Table(
    "bars", metadata,
    Column("conid", BigInteger, nullable=False),
    Column("bar_size", Text, nullable=False),
    Column("what_to_show", Text, nullable=False),
    Column("ts", UtcTimestamp, nullable=False),
    Column("open", Double, nullable=False),
    Column("high", Double, nullable=False),
    Column("low", Double, nullable=False),
    Column("close", Double, nullable=False),
    Column("volume", Double),
    Column("wap", Double),
    Column("bar_count", BigInteger),
    PrimaryKeyConstraint("conid", "bar_size", "what_to_show", "ts", name="bars_pkey"),
    postgresql_partition_by="RANGE (ts)",
    sqlite_with_rowid=False,
)
BAR_VALUE_COLUMNS = ("open", "high", "low", "close", "volume", "wap", "bar_count")

coverage = Table(
    "coverage", metadata,
    Column("id", Serial, Identity(), primary_key=True),
    Column("conid", BigInteger, nullable=False),
    Column("bar_size", Text, nullable=False),
    Column("what_to_show", Text, nullable=False),
    Column("range_start", UtcTimestamp, nullable=False),
    Column("range_end", UtcTimestamp, nullable=False),
    Column("fetched_at", UtcTimestamp, nullable=False),
    Column("source", Text, nullable=False),
    Column("bars_received", BigInteger, nullable=False),
    Index("coverage_series_idx", "conid", "bar_size", "what_to_show", "range_start"),
)

hist_requests = Table(
    "hist_requests", metadata,
    Column("id", Serial, Identity(), primary_key=True),
    Column("requested_at", UtcTimestamp, nullable=False),
    Column("gateway", Text, nullable=False),
    Column("conid", BigInteger, nullable=False),
    Column("bar_size", Text, nullable=False),
    Column("what_to_show", Text, nullable=False),
    Column("duration", Text, nullable=False),
    Column("end_datetime", Text, nullable=False),
    Column("weight", Integer, nullable=False),
    Index("hist_requests_gateway_idx", "gateway", "requested_at"),
)

strategy_runs = Table(
    "strategy_runs", metadata,
    Column("run_id", Text, primary_key=True),
    Column("strategy", Text, nullable=False),
    Column("params", Json, nullable=False),
    Column("engine", Text, nullable=False),
    Column("conid", BigInteger),
    Column("symbol", Text, nullable=False),
    Column("bar_size", Text, nullable=False),
    Column("what_to_show", Text, nullable=False),
    Column("data_start", UtcTimestamp),
    Column("data_end", UtcTimestamp),
    Column("created_at", UtcTimestamp, nullable=False),
    CheckConstraint("engine IN ('python', 'r')", name="strategy_runs_engine_check"),
)

strategy_positions = Table(
    "strategy_positions", metadata,
    Column("run_id", Text, nullable=False),
    Column("ts", UtcTimestamp, nullable=False),
    Column("position", Double, nullable=False),
    Column("signal", Text),
    PrimaryKeyConstraint("run_id", "ts", name="strategy_positions_pkey"),
)

executions = Table(
    "executions", metadata,
    Column("exec_id", Text, primary_key=True),
    Column("run_id", Text),
    Column("order_ref", Text),
    Column("order_id", BigInteger),
    Column("perm_id", BigInteger),
    Column("account", Text, nullable=False),
    Column("conid", BigInteger, nullable=False),
    Column("symbol", Text, nullable=False),
    Column("side", Text, nullable=False),
    Column("quantity", Double, nullable=False),
    Column("price", Double, nullable=False),
    Column("commission", Double),
    Column("commission_currency", Text),
    Column("realized_pnl", Double),
    Column("exec_time", UtcTimestamp, nullable=False),
    Column("mode", Text, nullable=False),
    Column("recorded_at", UtcTimestamp, nullable=False),
    CheckConstraint("mode IN ('simulate', 'paper', 'live')", name="executions_mode_check"),
    Index("executions_run_idx", "run_id"),
    Index("executions_conid_time_idx", "conid", "exec_time"),
)

account_snapshots = Table(
    "account_snapshots", metadata,
    Column("taken_at", UtcTimestamp, nullable=False),
    Column("account", Text, nullable=False),
    Column("account_type", Text),
    Column("tag", Text, nullable=False),
    Column("value", Text, nullable=False),
    Column("currency", Text, nullable=False),
    PrimaryKeyConstraint("taken_at", "account", "tag", "currency", name="account_snapshots_pkey"),
)

backtest_runs = Table(
    "backtest_runs", metadata,
    Column("run_id", Text, primary_key=True),
    Column("strategy", Text, nullable=False),
    Column("params", Json, nullable=False),
    Column("symbol", Text, nullable=False),
    Column("conid", BigInteger),
    Column("bar_size", Text, nullable=False),
    Column("what_to_show", Text, nullable=False),
    Column("data_start", UtcTimestamp),
    Column("data_end", UtcTimestamp),
    Column("fill_rule", Text, nullable=False),
    Column("cost_model", Text, nullable=False),
    Column("settings", Json, nullable=False),
    Column("metrics", Json, nullable=False),
    Column("engine_version", Text, nullable=False),
    Column("created_at", UtcTimestamp, nullable=False),
)

backtest_trades = Table(
    "backtest_trades", metadata,
    Column("run_id", Text, nullable=False),
    Column("trade_no", Integer, nullable=False),
    Column("entry_ts", UtcTimestamp, nullable=False),
    Column("exit_ts", UtcTimestamp),
    Column("side", Text, nullable=False),
    Column("quantity", Double, nullable=False),
    Column("entry_price", Double, nullable=False),
    Column("exit_price", Double),
    Column("gross_pnl", Double),
    Column("commission", Double),
    Column("net_pnl", Double),
    Column("bars_held", Integer),
    Column("exit_reason", Text),
    PrimaryKeyConstraint("run_id", "trade_no", name="backtest_trades_pkey"),
)

runs = Table(
    "runs", metadata,
    Column("run_id", Text, primary_key=True),
    Column("command", Text, nullable=False),
    Column("args", Json, nullable=False),
    Column("started_at", UtcTimestamp, nullable=False),
    Column("ended_at", UtcTimestamp),
    Column("status", Text, nullable=False),
    Column("rows_written", BigInteger),
    Column("error", Text),
    Column("pid", Integer),  # sql/003_runs_owner.sql
    Column("host", Text),
    Index("runs_started_idx", "started_at"),
)

live_decisions = Table(  # sql/002_live_decisions.sql
    "live_decisions", metadata,
    Column("id", Serial, Identity(), primary_key=True),
    Column("run_id", Text, nullable=False),
    Column("decided_at", UtcTimestamp, nullable=False),
    Column("bar_ts", UtcTimestamp),
    Column("kind", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("position", Double),
    Column("target", Double),
    Column("order_ref", Text),
    Column("data", Json, nullable=False),
    Index("live_decisions_run_idx", "run_id", "decided_at"),
)

order_locks = Table(  # sql/004_order_locks.sql: SQLite's per-(account, instrument) placing lock (store/locks.py)
    "order_locks", metadata,
    Column("lock_key", Text, primary_key=True),
    Column("owner_pid", Integer, nullable=False),
    Column("owner_host", Text, nullable=False),
    Column("acquired_at", UtcTimestamp, nullable=False),
)
