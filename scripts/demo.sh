#!/usr/bin/env bash
# The demo pipeline, end to end against the simulated gateway: `make run` (SQLite demo/ibkrtool.db) or
# `make run DB=postgresql://user:pass@host/db`. Usage: scripts/demo.sh [DB_URL]
#
# db init → account-summary → backfill (SPY 1s, EUR.USD 5m midpoint; the last 5 sessions) → resample SPY 1s→5m →
# strategy pivot-breakout (Python) and ema-aroon (R when Rscript has TTR) → backtest with a chart → execute --paper
# --latest. The sim runs in the background on a free loopback port and is
# stopped on any exit.
set -euo pipefail
cd "$(dirname "$0")/.."

# The URL may hold a password: `make run` passes it in the environment (DEMO_DB_URL), where `ps` does not show it.
DB_URL="${1:-${DEMO_DB_URL:-}}"
BIN="${VENV:-.venv}/bin"
OUT="${DEMO_DIR:-demo}"
SESSIONS="${DEMO_SESSIONS:-5}"
PACING_SCALE=0.01 # the sim's pacing windows are IB's x 0.01: the rules hold, the 10-minute window lasts 6 s
mkdir -p "$OUT"
export IBKRTOOL_DB_URL="${DB_URL:-${IBKRTOOL_DB_URL:-sqlite:///$OUT/ibkrtool.db}}"
export IBKRTOOL_IB_HOST=127.0.0.1

# shellcheck source=scripts/sim.sh
source scripts/sim.sh

T0=$SECONDS
CURRENT="starting"
step() {
  CURRENT="$*"
  printf '\n\033[1m== [%3ds] %s\033[0m\n' "$((SECONDS - T0))" "$*" >&2
}
on_exit() {
  local rc=$?
  sim_stop
  if [ "$rc" -ne 0 ]; then
    printf '\n\033[31mdemo failed (exit %d) at step: %s\033[0m\n' "$rc" "$CURRENT" >&2
    [ -f "$OUT/sim.log" ] && printf 'sim log: %s\n' "$OUT/sim.log" >&2
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM
ibkrtool() { "$BIN/ibkrtool" "$@"; }

# Which sessions to fetch and where the sim clock starts: see scripts/demo_clock.py.
clock=$("$BIN/python" scripts/demo_clock.py "$SESSIONS")
eval "$clock"
step "ibkrtool sim on a free loopback port (sim clock $SIM_START, pacing x$PACING_SCALE)"
sim_start "$BIN" "$OUT/sim.log" --start "$SIM_START" --pacing-scale "$PACING_SCALE"
export IBKRTOOL_IB_PORT="$SIM_PORT"
echo "sim pid $SIM_PID listening on 127.0.0.1:$SIM_PORT (log: $OUT/sim.log)" >&2

step "db init"
ibkrtool db init

step "account-summary"
ibkrtool account-summary

step "backfill SPY 1-second bars, sessions $FIRST_SESSION .. $LAST_SESSION"
ibkrtool backfill --symbol SPY --bar-size 1s --start "$FIRST_SESSION" --end "$LAST_SESSION" \
  --pacing-scale "$PACING_SCALE"

step "backfill EUR.USD 5-minute midpoint bars, sessions $FIRST_SESSION .. $LAST_SESSION"
ibkrtool backfill --symbol EUR.USD --bar-size 5m --what-to-show MIDPOINT --start "$FIRST_SESSION" \
  --end "$LAST_SESSION" --pacing-scale "$PACING_SCALE"

step "resample SPY 1s -> 5m"
ibkrtool resample --symbol SPY --bar-size 1s --to 5m --start "$FIRST_SESSION" --end "$LAST_SESSION"

step "strategy pivot-breakout on SPY 5m (Python engine)"
ibkrtool strategy pivot-breakout --symbol SPY --bar-size 5m --start "$FIRST_SESSION" --end "$LAST_SESSION" \
  --output "$OUT/spy_positions.csv" --trades "$OUT/spy_strategy_trades.csv"

ENGINE=python
if command -v Rscript >/dev/null 2>&1 && Rscript -e 'quit(status = !requireNamespace("TTR", quietly = TRUE))' \
  >/dev/null 2>&1; then
  ENGINE=r
fi
step "strategy ema-aroon on EUR.USD 5m ($ENGINE engine)"
if [ "$ENGINE" = python ]; then
  echo "note: Rscript with the TTR package was not found, so the Python engine runs ema-aroon instead of R" >&2
fi
ibkrtool strategy ema-aroon --engine "$ENGINE" --symbol EUR.USD --bar-size 5m --start "$FIRST_SESSION" \
  --end "$LAST_SESSION" --output "$OUT/eurusd_positions.csv" --trades "$OUT/eurusd_strategy_trades.csv"

step "backtest pivot-breakout on SPY 5m, chart $OUT/strategy_chart.png"
ibkrtool backtest pivot-breakout --symbol SPY --bar-size 5m --start "$FIRST_SESSION" --end "$LAST_SESSION" \
  --plot "$OUT/strategy_chart.png" --trades "$OUT/spy_backtest_trades.csv" --equity "$OUT/spy_equity.csv"

step "backtest ema-aroon on EUR.USD 5m"
ibkrtool backtest ema-aroon --symbol EUR.USD --bar-size 5m --start "$FIRST_SESSION" --end "$LAST_SESSION" \
  --size fixed:25000 --trades "$OUT/eurusd_backtest_trades.csv" --equity "$OUT/eurusd_equity.csv"

# --paper sends real orders to the connected gateway, here the sim (a paper account, DU...); --latest sends ONE
# order that brings the account to the strategy run's final target, rather than replaying every past signal now.
step "execute --paper: pivot-breakout's final SPY target as one paper order on the sim"
ibkrtool execute --strategy pivot-breakout --symbol SPY --paper --latest --quantity 100 \
  --log "$OUT/spy_execution_log.csv"
step "execute --paper: ema-aroon's final EUR.USD target as one paper order on the sim"
ibkrtool execute --strategy ema-aroon --symbol EUR.USD --paper --latest --quantity 25000 \
  --log "$OUT/eurusd_execution_log.csv"

step "what is stored"
ibkrtool db status

CURRENT="summary"
cat >&2 <<EOF

$(printf '\033[1m')Demo finished in $((SECONDS - T0)) s.$(printf '\033[0m') Everything it made:
  database          $(printf '%s' "$IBKRTOOL_DB_URL" | sed -E 's#(://[^:/@]+:)[^@]*@#\1***@#')
  positions (CSV)   $OUT/spy_positions.csv  $OUT/eurusd_positions.csv
  strategy trades   $OUT/spy_strategy_trades.csv  $OUT/eurusd_strategy_trades.csv
  backtest trades   $OUT/spy_backtest_trades.csv  $OUT/eurusd_backtest_trades.csv
  equity curves     $OUT/spy_equity.csv  $OUT/eurusd_equity.csv
  chart             $OUT/strategy_chart.png
  paper executions  $OUT/spy_execution_log.csv  $OUT/eurusd_execution_log.csv
  sim log           $OUT/sim.log
Next: ibkrtool db status · ibkrtool db export --help · make help
EOF
