"""Read benchmark: one year of 1-second RTH bars (252 days, 5,896,800 rows) from PostgreSQL into a DataFrame.

Ours (``read_bars``: binary COPY decoded with numpy into preallocated arrays) against ``pandas.read_sql`` of the
same rows. Each method runs in its own subprocess so its peak RSS is its own.
Goal: ≥ 5× faster with ≤ ⅓ of pandas' peak memory.
Starts a throwaway PostgreSQL cluster unless IBKRTOOL_BENCH_PG_URL is set.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from _data import rth_bars
from _pg import fresh_database, peak_rss_mb, pg_server

DAYS = 252
CHUNK_DAYS = 21
QUERY = ("SELECT ts, open, high, low, close, volume, wap, bar_count FROM ibkr_data.bars "
         "WHERE conid = 1 AND bar_size = '1s' AND what_to_show = 'TRADES' ORDER BY ts")


def measure(method: str, url: str) -> dict:
    """Read the series with ``method`` in this process; seconds, rows, RSS before and peak, and a checksum."""
    import pandas as pd

    from ibkrtool.store.bars import read_bars
    from ibkrtool.store.engine import open_engine

    engine = open_engine(url)
    before = peak_rss_mb()
    started = time.perf_counter()
    frame = read_bars(engine, 1, "1s", "TRADES") if method == "ours" else pd.read_sql(QUERY, engine, index_col="ts")
    seconds = time.perf_counter() - started
    checksum = float(frame["close"].sum() + frame["volume"].sum())
    first = pd.Timestamp(frame.index[0]).isoformat()
    return {"method": method, "seconds": seconds, "rows": len(frame), "rss_before_mb": before,
            "peak_rss_mb": peak_rss_mb(), "checksum": checksum, "first": first}


def _load(url: str) -> int:
    from ibkrtool.store.bars import write_bars
    from ibkrtool.store.engine import open_engine
    from ibkrtool.store.migrate import init_db

    engine = open_engine(url)
    init_db(engine)
    bars = rth_bars(DAYS)
    step = CHUNK_DAYS * 23_400
    for i in range(0, len(bars), step):
        write_bars(engine, 1, "1s", "TRADES", bars.iloc[i:i + step])
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE ibkr_data.bars")
    engine.dispose()
    return len(bars)


def _run(method: str, url: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--measure", method, url], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    print(f"read benchmark: {DAYS} trading days of 1-second RTH bars from PostgreSQL")
    with pg_server() as server, fresh_database(server) as url:
        started = time.perf_counter()
        rows = _load(url)
        print(f"  loaded {rows:,} rows through write_bars in {time.perf_counter() - started:.1f} s")
        _run("ours", url)  # warm the server's cache once so neither method pays for first reads from disk
        ours, pandas = _run("ours", url), _run("pandas", url)
    for r in (pandas, ours):
        name = "read_bars (binary COPY)" if r["method"] == "ours" else "pandas.read_sql"
        print(f"  {name:<24} {r['seconds']:7.2f} s  {r['rows'] / r['seconds']:>12,.0f} rows/s  "
              f"peak RSS {r['peak_rss_mb']:7.0f} MiB (before read {r['rss_before_mb']:.0f} MiB)")
    assert ours["rows"] == pandas["rows"] == rows, (ours["rows"], pandas["rows"], rows)
    assert abs(ours["checksum"] - pandas["checksum"]) <= 1e-6 * abs(pandas["checksum"]), "results differ"
    speed = pandas["seconds"] / ours["seconds"]
    memory = ours["peak_rss_mb"] / pandas["peak_rss_mb"]
    print(f"  speed: {speed:.1f}x faster than pandas.read_sql (goal >= 5x)")
    print(f"  memory: {memory:.2f} of pandas' peak RSS (goal <= 0.33)")
    print(f"  peak RSS of this (loader) process: {peak_rss_mb():.0f} MiB")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--measure":
        print(json.dumps(measure(sys.argv[2], sys.argv[3])))
    else:
        main()
