"""Ingest benchmark: 21 trading days of 1-second bars (491,400 rows) into PostgreSQL.

Ours (``write_bars``: binary COPY, then the merge path when every row exists) against ``psql \\copy`` of the same
rows as CSV into an identical partitioned table, and ``pandas.DataFrame.to_sql`` with default arguments.
Goals: new range ≥ 0.6× psql \\copy rows/s; all rows already stored ≥ 100k rows/s with 0 rows added.
Starts a throwaway PostgreSQL cluster unless IBKRTOOL_BENCH_PG_URL is set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd
from _data import rth_bars
from _pg import fresh_database, peak_rss_mb, pg_server
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from ibkrtool.store.bars import write_bars
from ibkrtool.store.csvio import write_bars_csv
from ibkrtool.store.engine import open_engine
from ibkrtool.store.migrate import init_db
from ibkrtool.store.partitions import month_starts, next_month, partition_name
from tests.plugins.pg import _pg_bin

DAYS = 21
COLUMNS = "conid, bar_size, what_to_show, ts, open, high, low, close, volume, wap, bar_count"


def _psql_copy(url: str, csv_path: Path) -> float:
    """Seconds for ``psql \\copy`` of the CSV into ibkr_data.bars_psql (same shape and partitions as bars)."""
    u = make_url(url)
    env = {**os.environ, "PGPASSWORD": u.password or ""}
    psql = shutil.which("psql") or str(Path(os.path.realpath(_pg_bin() / "initdb")).parent / "psql")
    cmd = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", u.host or "127.0.0.1", "-p", str(u.port or 5432),
           "-U", u.username or "postgres", "-d", u.database,
           "-c", f"\\copy ibkr_data.bars_psql ({COLUMNS}) FROM '{csv_path}' WITH (FORMAT csv, HEADER true)"]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    return time.perf_counter() - started


def _prepare_psql_table(engine: Engine, bars: pd.DataFrame) -> None:
    """ibkr_data.bars_psql: same columns, key and monthly partitions as bars (made beforehand: psql cannot)."""
    first, last = bars.index[0].to_pydatetime(), bars.index[-1].to_pydatetime()
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE ibkr_data.bars_psql (LIKE ibkr_data.bars INCLUDING ALL) "
                          "PARTITION BY RANGE (ts)"))
        conn.execute(text("CREATE TABLE ibkr_data.bars_psql_default PARTITION OF ibkr_data.bars_psql DEFAULT"))
        for month in month_starts(first, last):
            conn.execute(text(f"CREATE TABLE ibkr_data.psql_{partition_name(month)} PARTITION OF ibkr_data.bars_psql "
                              f"FOR VALUES FROM ('{month.isoformat()}') TO ('{next_month(month).isoformat()}')"))


def _csv_for_psql(bars: pd.DataFrame, path: Path) -> None:
    write_bars_csv(bars, path)
    lines = path.read_text().splitlines()
    body = [f"1,1s,TRADES,{line}" for line in lines[1:]]
    path.write_text("\n".join([f"{COLUMNS.replace(' ', '')}", *body]) + "\n")


def main() -> None:
    bars = rth_bars(DAYS)
    rows = len(bars)
    print(f"ingest benchmark: {rows:,} 1-second bars ({DAYS} trading days), PostgreSQL")
    with pg_server() as server, fresh_database(server) as url, tempfile.TemporaryDirectory() as tmp:
        engine = open_engine(url)
        init_db(engine)
        _prepare_psql_table(engine, bars)
        csv_path = Path(tmp) / "bars.csv"
        _csv_for_psql(bars, csv_path)

        psql_s = _psql_copy(url, csv_path)
        started = time.perf_counter()
        fresh = write_bars(engine, 1, "1s", "TRADES", bars)
        ours_new_s = time.perf_counter() - started
        started = time.perf_counter()
        again = write_bars(engine, 1, "1s", "TRADES", bars)
        ours_again_s = time.perf_counter() - started
        ours_peak = peak_rss_mb()
        started = time.perf_counter()
        bars.to_sql("bars_pandas", engine)
        pandas_s = time.perf_counter() - started
        engine.dispose()

    rate = {name: rows / s for name, s in [("psql", psql_s), ("new", ours_new_s), ("again", ours_again_s),
                                             ("pandas", pandas_s)]}
    print(f"  psql \\copy (CSV)           {psql_s:7.2f} s  {rate['psql']:>10,.0f} rows/s")
    print(f"  pandas to_sql (defaults)    {pandas_s:7.2f} s  {rate['pandas']:>10,.0f} rows/s")
    print(f"  write_bars, new range       {ours_new_s:7.2f} s  {rate['new']:>10,.0f} rows/s  {fresh}")
    print(f"  write_bars, all stored      {ours_again_s:7.2f} s  {rate['again']:>10,.0f} rows/s  {again}")
    print(f"  ratio new range / psql \\copy: {rate['new'] / rate['psql']:.2f}x (goal >= 0.60x)")
    print(f"  ratio new range / pandas:      {rate['new'] / rate['pandas']:.1f}x")
    print(f"  all stored: {rate['again']:,.0f} rows/s (goal >= 100,000), rows added: {again.inserted}")
    print(f"  peak RSS: {ours_peak:.0f} MiB after write_bars (491,400-row frame included), "
          f"{peak_rss_mb():.0f} MiB after pandas to_sql")


if __name__ == "__main__":
    main()
