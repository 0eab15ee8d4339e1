"""Benchmark ``resample``: figures and ratios from one run; every method's result is checked identical.

(a) 5.9M one-second bars (a year of regular-hours seconds) -> 5-minute bars in memory: ours (clock bins; and
    with the exchange sessions, IB alignment) vs pandas ``resample().agg()`` vs polars ``group_by_dynamic``.
    Goal: at least as fast as pandas.
(b) The same year PostgreSQL -> PostgreSQL: ``ibkrtool resample`` through the store (binary COPY out, numpy, binary
    COPY in) vs the in-database ``date_bin`` INSERT ... SELECT vs the naive pandas path (``read_sql`` -> resample
    -> ``to_sql``). Goals: no slower than the in-database query, >= 10x the naive path. Each method runs in its own
    process so its peak memory (max RSS) is its own; every method runs ``--repeat`` times in interleaved rounds and
    its best time counts (all times are printed), the same rule for every method. A throwaway cluster
    (tests.plugins.pg._Cluster) is started unless IBKRTOOL_BENCH_PG_URL is set.
(c) CSV on stdin -> CSV on stdout through the CLI, rows/s.

Usage: .venv/bin/python bench/resample.py [--rows N] [--skip-pg] [--repeat N] [--naive-rows N]  (~5 min)
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ibkrtool.calendars import sessions  # noqa: E402
from ibkrtool.data.resample import resample_bars  # noqa: E402
from ibkrtool.model import BAR_COLUMNS, BarSize, Instrument  # noqa: E402

SPY = Instrument.parse("SPY")
ONE_S, FIVE_M = BarSize.parse("1s"), BarSize.parse("5m")
CONID = 756733


def year_of_seconds(rows: int) -> tuple[pd.DataFrame, list]:
    """``rows`` one-second bars on consecutive RTH seconds of 2025's NYSE sessions (5.9M = the whole year)."""
    year = sessions(SPY, date(2025, 1, 1), date(2025, 12, 31))
    opens = np.array([pd.Timestamp(s.open).value // 1000 for s in year], dtype=np.int64)
    lengths = np.array([s.seconds for s in year], dtype=np.int64)
    starts = np.repeat(opens, lengths) + (np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths,
                                                                                lengths)) * 1_000_000
    ts = starts[:rows]
    rng = np.random.default_rng(1)
    close = np.round(590 + rng.normal(0, 0.01, ts.size).cumsum(), 2)
    open_ = np.round(close + rng.normal(0, 0.01, ts.size), 2)
    high = np.maximum(open_, close) + 0.01
    low = np.minimum(open_, close) - 0.01
    volume = rng.integers(1, 20, ts.size).astype(np.float64) * 100
    index = pd.DatetimeIndex(ts.astype("datetime64[us]"), name="ts").tz_localize("UTC")
    bars = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": volume,
                         "wap": np.round((open_ + close) / 2, 4), "bar_count": rng.integers(1, 9, ts.size) * 1.0},
                        index=index)
    return bars, year


def best_of(fn, repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def pandas_5m(bars: pd.DataFrame) -> pd.DataFrame:
    frame = bars.assign(pv=bars["wap"] * bars["volume"])
    out = frame.resample("5min").agg({"open": "first", "high": "max", "low": "min", "close": "last",
                                      "volume": "sum", "pv": "sum", "bar_count": "sum"})
    out = out[out["close"].notna()]
    out["wap"] = out.pop("pv") / out["volume"]
    return out[list(BAR_COLUMNS)]


def polars_frame(bars: pd.DataFrame):
    """The bars as a native polars frame (built once, outside the timing: each library gets its own format)."""
    import polars as pl

    columns = {"ts": pl.Series("ts", bars.index.as_unit("us").tz_localize(None).to_numpy()).dt.replace_time_zone("UTC")}
    columns.update({c: bars[c].to_numpy() for c in BAR_COLUMNS})
    return pl.DataFrame(columns)


def polars_5m(frame):
    import polars as pl

    frame = frame.with_columns((pl.col("wap") * pl.col("volume")).alias("pv"))
    out = frame.group_by_dynamic("ts", every="5m").agg(
        pl.col("open").first(), pl.col("high").max(), pl.col("low").min(), pl.col("close").last(),
        pl.col("volume").sum(), pl.col("pv").sum(), pl.col("bar_count").sum())
    return out.with_columns((pl.col("pv") / pl.col("volume")).alias("wap")).drop("pv")


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.allclose(a, b, rtol=1e-12, atol=0, equal_nan=True)


def part_a(bars: pd.DataFrame, year: list) -> None:
    print(f"(a) {len(bars):,} one-second bars -> 5m, in memory (best of 3)")
    t_ours, ours = best_of(lambda: resample_bars(bars, ONE_S, FIVE_M, None))
    t_sess, sess = best_of(lambda: resample_bars(bars, ONE_S, FIVE_M, year))
    t_pd, theirs = best_of(lambda: pandas_5m(bars))
    native = polars_frame(bars)
    t_pl, pol = best_of(lambda: polars_5m(native))
    cols = list(BAR_COLUMNS)
    ref = ours[cols].to_numpy()
    checks = {
        "sessions": same(sess[cols].to_numpy(), ref),
        "pandas": same(theirs[cols].to_numpy(), ref) and (theirs.index.as_unit("us") == ours.index).all(),
        "polars": same(pol.select(cols).to_numpy(), ref),
    }
    print(f"    ours (clock bins)      {t_ours:7.3f} s   {len(bars) / t_ours / 1e6:6.1f} M rows/s")
    print(f"    ours (IB sessions)     {t_sess:7.3f} s   {len(bars) / t_sess / 1e6:6.1f} M rows/s")
    print(f"    pandas resample().agg  {t_pd:7.3f} s   ratio pandas/ours = {t_pd / t_ours:5.2f}x")
    print(f"    polars group_by_dynamic{t_pl:7.3f} s   ratio polars/ours = {t_pl / t_ours:5.2f}x")
    print(f"    {len(ours):,} bars; identical results: {checks}")
    if not all(checks.values()):
        raise SystemExit("results differ between methods")


# ---------------------------------------------------------------- (b) PostgreSQL end to end, one process per method
DATE_BIN_SQL = """
INSERT INTO ibkr_data.bars (conid, bar_size, what_to_show, ts, open, high, low, close, volume, wap, bar_count)
SELECT conid, '5m', what_to_show, date_bin('5 minutes', ts, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bin,
       (array_agg(open ORDER BY ts))[1], max(high), min(low), (array_agg(close ORDER BY ts DESC))[1],
       sum(volume), sum(wap * volume) / NULLIF(sum(volume), 0), sum(bar_count)
FROM ibkr_data.bars WHERE conid = %(conid)s AND bar_size = '1s' AND what_to_show = 'TRADES'
GROUP BY conid, what_to_show, bin
ON CONFLICT (conid, bar_size, what_to_show, ts) DO UPDATE SET open = EXCLUDED.open, high = EXCLUDED.high,
  low = EXCLUDED.low, close = EXCLUDED.close, volume = EXCLUDED.volume, wap = EXCLUDED.wap,
  bar_count = EXCLUDED.bar_count
"""


def child(method: str, url: str) -> None:
    """Run one method in this process and print its time and peak memory as JSON."""
    from ibkrtool.data.resample import resample_stored
    from ibkrtool.store.bars import write_bars
    from ibkrtool.store.engine import open_engine

    engine = open_engine(url)
    t0 = time.perf_counter()
    if method == "ours":  # what `ibkrtool resample --symbol SPY --bar-size 1s --to 5m` does
        out, _ = resample_stored(engine, CONID, SPY, ONE_S, FIVE_M, "TRADES", rth=True)
        write_bars(engine, CONID, "5m", "TRADES", out[list(BAR_COLUMNS)])
    elif method == "ours-1":  # the same on one connection, for the record
        out, _ = resample_stored(engine, CONID, SPY, ONE_S, FIVE_M, "TRADES", rth=True, workers=1)
        write_bars(engine, CONID, "5m", "TRADES", out[list(BAR_COLUMNS)])
    elif method == "date_bin":
        with engine.begin() as conn:
            conn.connection.driver_connection.cursor().execute(DATE_BIN_SQL, {"conid": CONID})
    else:
        naive(engine)
    elapsed = time.perf_counter() - t0
    print(json.dumps({"seconds": elapsed, "max_rss_mb": peak_rss_mb()}))


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: reset by exec, unlike ru_maxrss which keeps the parent's)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def naive(engine) -> None:
    """The obvious pandas path: read_sql, resample, to_sql into a staging table, then upsert."""
    from sqlalchemy import text

    query = ("SELECT ts, open, high, low, close, volume, wap, bar_count FROM ibkr_data.bars "
             f"WHERE conid = {CONID} AND bar_size = '1s' AND what_to_show = 'TRADES' ORDER BY ts")
    bars = pd.read_sql(query, engine, index_col="ts")
    bars.index = pd.DatetimeIndex(bars.index).tz_convert("UTC")
    out = pandas_5m(bars.astype(np.float64)).reset_index()
    out.insert(0, "conid", CONID)
    out.insert(1, "bar_size", "5m")
    out.insert(2, "what_to_show", "TRADES")
    with engine.begin() as conn:
        out.to_sql("bars_naive", conn, schema="ibkr_data", if_exists="replace", index=False)
        conn.execute(text("INSERT INTO ibkr_data.bars SELECT conid, bar_size, what_to_show, ts, open, high, low, "
                          "close, volume, wap, bar_count::bigint FROM ibkr_data.bars_naive "
                          "ON CONFLICT (conid, bar_size, what_to_show, ts) DO UPDATE SET close = EXCLUDED.close"))
        conn.execute(text("DROP TABLE ibkr_data.bars_naive"))


def run_child(method: str, url: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", method, "--url", url], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{method} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def stored_5m(engine) -> np.ndarray:
    from ibkrtool.store.bars import read_bars

    frame = read_bars(engine, CONID, "5m", "TRADES")
    return np.column_stack([frame.index.asi8, frame.to_numpy()])


def clear_5m(engine) -> None:
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(text(f"DELETE FROM ibkr_data.bars WHERE conid = {CONID} AND bar_size = '5m'"))


def part_b(bars: pd.DataFrame, naive_rows: int, repeat: int = 3) -> None:
    from tests.plugins.pg import _Cluster, _pg_bin

    url = os.environ.get("IBKRTOOL_BENCH_PG_URL")
    cluster = None
    if not url:
        bindir = _pg_bin()
        if bindir is None:
            print("(b) skipped: no PostgreSQL binaries and IBKRTOOL_BENCH_PG_URL unset")
            return
        cluster = _Cluster(bindir)
        url = cluster.start()
    try:
        pg_end_to_end(bars, url, naive_rows, repeat)
    finally:
        if cluster is not None:
            cluster.stop()


def pg_end_to_end(bars: pd.DataFrame, url: str, naive_rows: int, repeat: int) -> None:
    from ibkrtool.model.contract import Contract
    from ibkrtool.store.bars import write_bars
    from ibkrtool.store.contracts import upsert_contract
    from ibkrtool.store.engine import open_engine
    from ibkrtool.store.migrate import init_db

    engine = open_engine(url)
    init_db(engine)
    upsert_contract(engine, Contract(conid=CONID, symbol="SPY", local_symbol="SPY"))
    t0 = time.perf_counter()
    write_bars(engine, CONID, "1s", "TRADES", bars)
    loaded = time.perf_counter() - t0
    # A freshly COPYed table's first full read sets every row's hint bits, i.e. rewrites every page; whichever
    # method ran first paid that for all the others. VACUUM ANALYZE (what autovacuum does soon after a bulk load)
    # settles the table so every method reads the same pages; CHECKPOINT then flushes what the load and VACUUM
    # dirtied, which the checkpointer would otherwise write out during the first measurements.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE ibkr_data.bars")
        conn.exec_driver_sql("CHECKPOINT")
    print(f"(b) PostgreSQL -> PostgreSQL, {len(bars):,} one-second bars -> 5m (loading them took {loaded:.1f} s, "
          f"then VACUUM ANALYZE and CHECKPOINT {time.perf_counter() - t0 - loaded:.1f} s)")
    full = naive_rows >= len(bars)
    methods = ("ours", "ours-1", "date_bin", "naive") if full else ("ours", "ours-1", "date_bin")
    runs: dict[str, list[dict]] = {m: [] for m in methods}
    for _ in range(repeat):  # rounds of every method, so slow spells of a shared machine hit them alike
        for method in methods:
            settle(engine)
            result = run_child(method, url)
            result["rows"] = stored_5m(engine)
            runs[method].append(result)
    best = {m: min(r, key=lambda x: x["seconds"]) for m, r in runs.items()}
    ok = all(same(best[m]["rows"], best["date_bin"]["rows"]) for m in ("ours", "ours-1"))
    ours, db = best["ours"], best["date_bin"]

    def line(method: str) -> str:
        times = ", ".join(f"{r['seconds']:.2f}" for r in runs[method])
        return f"{best[method]['seconds']:7.2f} s   peak RSS {best[method]['max_rss_mb']:7.0f} MB   (runs: {times})"

    print(f"    ours (store, 2 conns)  {line('ours')}")
    print(f"    ours (store, 1 conn)   {line('ours-1')}")
    print(f"    in-database date_bin   {line('date_bin')}")
    print(f"      ratio date_bin/ours = {db['seconds'] / ours['seconds']:5.2f}x (goal >= 1)")
    print(f"    identical 5m bars: {ok} ({len(ours['rows']):,} bars)")
    if full:
        naive = best["naive"]
        print(f"    naive read_sql/to_sql  {line('naive')}")
        print(f"      ratio naive/ours = {naive['seconds'] / ours['seconds']:5.1f}x (goal >= 10)")
        ok = ok and same(naive["rows"][:, :5], ours["rows"][:, :5])
    else:
        naive_slice(engine, url, bars, naive_rows, ours["seconds"])
    if not ok:
        raise SystemExit("results differ between methods")


def settle(engine) -> None:
    """Before each measured run: no 5m bars stored, and nothing left for the checkpointer from the previous run."""
    clear_5m(engine)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("CHECKPOINT")


def naive_slice(engine, url: str, bars: pd.DataFrame, naive_rows: int, ours_s: float) -> None:
    """The naive path on a slice (``--naive-rows``), scaled linearly to the year; for quick runs."""
    from sqlalchemy import text

    cut = bars.index[naive_rows]
    with engine.begin() as conn:
        conn.execute(text(f"DELETE FROM ibkr_data.bars WHERE conid = {CONID} AND bar_size = '1s' AND ts >= :c"),
                     {"c": cut.to_pydatetime()})
    settle(engine)
    naive_result = run_child("naive", url)
    scaled = naive_result["seconds"] * len(bars) / naive_rows
    settle(engine)
    small = run_child("ours", url)
    print(f"    naive pandas read_sql/to_sql on {naive_rows:,} rows: {naive_result['seconds']:.2f} s "
          f"(ours on the same rows {small['seconds']:.2f} s, ratio {naive_result['seconds'] / small['seconds']:.1f}x); "
          f"scaled to the year ~{scaled:.0f} s, ratio vs ours ~{scaled / ours_s:.1f}x; "
          f"peak RSS {naive_result['max_rss_mb']:.0f} MB")


# ---------------------------------------------------------------- (c) CSV through the CLI
def part_c(bars: pd.DataFrame) -> None:
    from ibkrtool.store.csvio import write_bars_csv

    buf = io.StringIO()
    write_bars_csv(bars, buf)
    data = buf.getvalue().encode()
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{Path(tmp) / 'unused.db'}"
        cmd = [sys.executable, "-m", "ibkrtool", "--db", db, "resample", "--input", "-", "--symbol", "SPY",
               "--to", "5m", "-o", "-"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, input=data, capture_output=True, cwd=ROOT)
        elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(proc.stderr.decode())
    out_rows = proc.stdout.count(b"\n") - 1
    print(f"(c) CSV stdin -> CSV stdout via the CLI: {len(bars):,} rows ({len(data) / 1e6:.0f} MB) in {elapsed:.2f} s "
          f"= {len(bars) / elapsed / 1e3:,.0f} k rows/s in, {out_rows:,} rows out (process start included)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_896_800)
    parser.add_argument("--csv-rows", type=int, default=1_000_000)
    parser.add_argument("--naive-rows", type=int, default=10**9,
                        help="run the naive path on the first N rows only, scaled to the year (quick runs)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the end-to-end methods (best counts)")
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--child")
    parser.add_argument("--url")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.url)
        return
    bars, year = year_of_seconds(args.rows)
    part_a(bars, year)
    if args.skip_pg:
        print("(b) skipped (--skip-pg)")
    else:
        part_b(bars, args.naive_rows, args.repeat)
    part_c(bars.iloc[: args.csv_rows])


if __name__ == "__main__":
    main()
