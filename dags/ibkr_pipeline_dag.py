"""Airflow DAG: the ibkrtool pipeline per symbol — backfill → resample → strategy → backtest → execute.

Each task is one call of the ``ibkrtool`` CLI through a BashOperator: the DAG holds no trading logic, so what runs
here is exactly what runs in a shell, cron or ``make``. One mapped task group per symbol (dynamic task mapping over
the ``symbols`` task's output): a symbol that fails does not hold the others back.

Configuration, read when the DAG runs (not when it is parsed): Airflow Variable ``ibkrtool_<name>`` if set, else the
environment variable ``IBKRTOOL_<NAME>``, else the default below.

=================  =====================================  ============================================
name               default                                meaning
=================  =====================================  ============================================
symbols            SPY,EUR.USD                            comma-separated, or a JSON list
db_url             (required)                             database URL (IBKRTOOL_DB_URL); an SQLite file
                                                          needs an absolute path (sqlite:////abs/path.db)
ib_host / ib_port  127.0.0.1 / 7497                       TWS/Gateway or ``ibkrtool sim``
client_id          100                                    first IB API client id; symbol i uses client_id + i
                                                          (IB refuses two connections with one id)
bin                ibkrtool                               the ibkrtool executable
bar_size           SPY: 1s, EUR.USD: 5m, else 1m          backfill bar size; JSON {"SPY": "1s"} or one size
to                 5m                                     resample target = the strategy/backtest bars
strategy / engine  ema-aroon / r                          ``ibkrtool strategy --list``; engine python|r
backfill_start     (empty: the last complete session)     backfill --start / --end (dates or datetimes)
backfill_end
quantity           EUR.USD: 25000, else 100               execute --quantity per unit of target; JSON map ok
pacing_scale       1.0                                    only for ``ibkrtool sim --pacing-scale``
out_dir            /tmp/ibkrtool-airflow                  positions, trades, equity CSVs and charts
=================  =====================================  ============================================

The execute step sends ONE paper order per symbol (``ibkrtool execute --paper --latest``: the account's position
brought to the strategy run's final target; refused unless the account is a paper one). It is never retried, and
ends SKIPPED (exit 99) on an ibkrtool without the ``execute`` command.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, Variable, task, task_group

DEFAULT_BAR_SIZES = {"SPY": "1s", "EUR.USD": "5m"}
DEFAULT_QUANTITIES = {"EUR.USD": "25000"}  # IDEALPRO's minimum; stocks: 100 shares
DEFAULTS = {"symbols": "SPY,EUR.USD", "bin": "ibkrtool", "to": "5m", "strategy": "ema-aroon", "engine": "r",
            "pacing_scale": "1.0", "out_dir": "/tmp/ibkrtool-airflow", "ib_host": "127.0.0.1", "ib_port": "7497",
            "client_id": "100"}
# Settings passed to ibkrtool through its own environment variables when they are configured.
IBKRTOOL_ENV = ("db_url", "ib_host", "ib_port")


def setting(name: str) -> str:
    """Variable ``ibkrtool_<name>``, else env ``IBKRTOOL_<NAME>``, else the default (empty when none)."""
    fallback = os.environ.get(f"IBKRTOOL_{name.upper()}", DEFAULTS.get(name, ""))
    return str(Variable.get(f"ibkrtool_{name}", default=fallback))


def check_db_url(url: str) -> str:
    """The database URL, refused when missing or a relative SQLite path: each task runs in its own working
    directory, so a relative file would be a different throwaway database per task."""
    if not url:
        raise ValueError("no database configured: set the Variable ibkrtool_db_url or IBKRTOOL_DB_URL "
                         "(postgresql://… or sqlite:////absolute/path.db)")
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        raise ValueError(f"ibkrtool_db_url {url!r} is a relative SQLite path: write sqlite:////absolute/path.db")
    return url


def parse_symbols(text: str) -> list[str]:
    """``SPY,EUR.USD``, ``SPY EUR.USD`` or a JSON list → symbols (order kept, duplicates dropped)."""
    text = text.strip()
    items = json.loads(text) if text.startswith("[") else text.replace(",", " ").split()
    return list(dict.fromkeys(str(s).strip() for s in items if str(s).strip()))


def per_symbol(symbol: str, configured: str, defaults: dict[str, str], fallback: str) -> str:
    """A per-symbol setting: entry of a JSON map (``{"SPY": "1s"}``), one value for all, or the default."""
    configured = configured.strip()
    if configured.startswith("{"):
        return str(json.loads(configured).get(symbol, defaults.get(symbol, fallback)))
    return configured or defaults.get(symbol, fallback)


def symbol_env(symbol: str, index: int = 0) -> dict[str, str]:
    """Everything the tasks of the ``index``-th symbol need, as environment variables for their bash commands.

    Each symbol gets its own IB client id, since the symbols' chains run in parallel on a real executor.
    """
    env = {f"IBKRTOOL_{name.upper()}": setting(name) for name in IBKRTOOL_ENV if setting(name)}
    env.update(
        IBKRTOOL_CLIENT_ID=str(int(setting("client_id")) + index), SYMBOL=symbol,
        BAR_SIZE=per_symbol(symbol, setting("bar_size"), DEFAULT_BAR_SIZES, "1m"),
        QUANTITY=per_symbol(symbol, setting("quantity"), DEFAULT_QUANTITIES, "100"), TO=setting("to"),
        IBKRTOOL=setting("bin"), STRATEGY=setting("strategy"), ENGINE=setting("engine"),
        START=setting("backfill_start"), END=setting("backfill_end"), PACING_SCALE=setting("pacing_scale"),
        OUT=os.path.join(setting("out_dir"), symbol),
    )
    return env


# Bash for each step. $SYMBOL etc. come from symbol_env; `${START:+--start "$START"}` passes an option only when set.
RANGE = '${START:+--start "$START"} ${END:+--end "$END"}'
BACKFILL = f'"$IBKRTOOL" backfill --symbol "$SYMBOL" --bar-size "$BAR_SIZE" {RANGE} --pacing-scale "$PACING_SCALE"'
RESAMPLE = ('if [ "$BAR_SIZE" = "$TO" ]; then echo "$SYMBOL is stored at $TO already: nothing to resample"; else '
            f'"$IBKRTOOL" resample --symbol "$SYMBOL" --bar-size "$BAR_SIZE" --to "$TO" {RANGE}; fi')
STRATEGY = ('mkdir -p "$OUT" && "$IBKRTOOL" strategy "$STRATEGY" --engine "$ENGINE" --symbol "$SYMBOL" '
            f'--bar-size "$TO" {RANGE} --output "$OUT/positions.csv" --trades "$OUT/strategy_trades.csv"')
BACKTEST = (f'mkdir -p "$OUT" && "$IBKRTOOL" backtest "$STRATEGY" --symbol "$SYMBOL" --bar-size "$TO" {RANGE} '
            '--plot "$OUT/chart.png" --trades "$OUT/backtest_trades.csv" --equity "$OUT/equity.csv" --json')
# Exit 99 = SKIPPED: an older ibkrtool without `execute`.
EXECUTE = ('if ! "$IBKRTOOL" execute --help >/dev/null 2>&1; then echo "this ibkrtool has no execute command"; '
           'exit 99; fi; mkdir -p "$OUT" && "$IBKRTOOL" execute --strategy "$STRATEGY" --symbol "$SYMBOL" --paper '
           '--latest --quantity "$QUANTITY" --log "$OUT/execution_log.csv"')


def _bash(task_id: str, command: str, env: Any, **kwargs: Any) -> BashOperator:
    # append_env: keep the worker's environment (PATH, HOME, IBKRTOOL_* set on the worker) under ours.
    return BashOperator(task_id=task_id, bash_command=command, env=env, append_env=True, **kwargs)


with DAG(
    dag_id="ibkr_pipeline",
    description="ibkrtool: backfill → resample → strategy → backtest → execute, one mapped group per symbol",
    schedule="30 16 * * 1-5",  # after the close on weekdays (New York time: see start_date); closed days cost nothing
    start_date=pendulum.datetime(2026, 1, 1, tz="America/New_York"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=2)},
    tags=["ibkrtool"],
    doc_md=__doc__,
) as dag:

    @task
    def symbols() -> list[dict[str, str]]:
        """One environment per configured symbol (read at run time: Variables may change between runs)."""
        check_db_url(setting("db_url"))
        names = parse_symbols(setting("symbols"))
        if not names:
            raise ValueError("no symbols configured: set the Variable ibkrtool_symbols, e.g. SPY,EUR.USD")
        return [symbol_env(name, index) for index, name in enumerate(names)]

    @task_group
    def pipeline(env: dict[str, str]) -> None:
        backfill = _bash("backfill", BACKFILL, env)
        resample = _bash("resample", RESAMPLE, env)
        strategy = _bash("strategy", STRATEGY, env)
        backtest = _bash("backtest", BACKTEST, env)
        execute = _bash("execute", EXECUTE, env, retries=0)  # never resend orders automatically
        backfill >> resample >> strategy >> backtest >> execute

    pipeline.expand(env=symbols())
