#!/usr/bin/env bash
# The one-shot pipeline of the docker-compose `pipeline` service (also usable on any host with ibkrtool):
# db init → backfill → resample → strategy → backtest for each symbol, against the gateway and database named by
# IBKRTOOL_IB_HOST/IBKRTOOL_IB_PORT and IBKRTOOL_DB_URL.
#
# Environment: SYMBOLS ("SPY EUR.USD"), BAR_SIZE (backfill size, 1m), TO (strategy bars, 5m), STRATEGY (ema-aroon),
# ENGINE (r), START/END (backfill range; default: the last complete session), PACING_SCALE (1.0; 0.01 for the sim),
# OUT (output directory, /data/out).
set -euo pipefail
SYMBOLS=${SYMBOLS:-SPY EUR.USD}
BAR_SIZE=${BAR_SIZE:-1m}
TO=${TO:-5m}
STRATEGY=${STRATEGY:-ema-aroon}
ENGINE=${ENGINE:-r}
PACING_SCALE=${PACING_SCALE:-1.0}
OUT=${OUT:-/data/out}
range=()
[ -n "${START:-}" ] && range+=(--start "$START")
[ -n "${END:-}" ] && range+=(--end "$END")
step() { printf '== %s\n' "$*" >&2; }

mkdir -p "$OUT"
step "db init"
ibkrtool db init
read -r -a symbols <<<"$SYMBOLS"
for symbol in "${symbols[@]}"; do
  step "$symbol: backfill $BAR_SIZE"
  ibkrtool backfill --symbol "$symbol" --bar-size "$BAR_SIZE" "${range[@]}" --pacing-scale "$PACING_SCALE"
  if [ "$BAR_SIZE" != "$TO" ]; then
    step "$symbol: resample $BAR_SIZE -> $TO"
    ibkrtool resample --symbol "$symbol" --bar-size "$BAR_SIZE" --to "$TO" "${range[@]}"
  fi
  step "$symbol: strategy $STRATEGY ($ENGINE)"
  ibkrtool strategy "$STRATEGY" --engine "$ENGINE" --symbol "$symbol" --bar-size "$TO" "${range[@]}" \
    --output "$OUT/${symbol}_positions.csv" --trades "$OUT/${symbol}_strategy_trades.csv"
  step "$symbol: backtest $STRATEGY"
  ibkrtool backtest "$STRATEGY" --symbol "$symbol" --bar-size "$TO" "${range[@]}" \
    --plot "$OUT/${symbol}_chart.png" --trades "$OUT/${symbol}_backtest_trades.csv"
done
step "what is stored"
ibkrtool db status
