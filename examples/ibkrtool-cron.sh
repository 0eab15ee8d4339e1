#!/usr/bin/env bash
# Run one ibkrtool command from cron: never two runs of the same job at once (flock), everything logged to a file.
#
#   ibkrtool-cron.sh [--name JOB] [--trading-day] [--] IBKRTOOL_ARGS...
#
#   --name JOB      lock and log name (default: the ibkrtool command, e.g. "backfill"): $IBKRTOOL_LOG_DIR/JOB.log
#   --trading-day   do nothing (exit 0) when NYSE has no regular session today (weekends, holidays)
#
# Environment (all optional):
#   IBKRTOOL_BIN       the ibkrtool executable (default: `ibkrtool` on PATH)
#   IBKRTOOL_ENV_FILE  a file of KEY=value lines sourced first: IBKRTOOL_DB_URL, IBKRTOOL_IB_PORT, ...
#   IBKRTOOL_LOG_DIR   log directory (default: ${XDG_STATE_HOME:-$HOME/.local/state}/ibkrtool)
#   IBKRTOOL_LOCK_DIR  lock directory (default: the log directory)
#
# Exit status: ibkrtool's own (0 ok, 3 bad input, 4 gateway unreachable, 5 database, 6 IB refused ...), or 0 when
# the run was skipped because the previous one still holds the lock (that is expected, not an error for cron to mail).
set -euo pipefail

name=""
trading_day=0
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name=${2:?--name needs a value}; shift 2 ;;
    --trading-day) trading_day=1; shift ;;
    --) shift; break ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) break ;;
  esac
done
if [ $# -eq 0 ]; then
  echo "usage: $(basename "$0") [--name JOB] [--trading-day] [--] IBKRTOOL_ARGS..." >&2
  exit 2
fi
name=${name:-$1}
case "$name" in
  *[!A-Za-z0-9._-]*) echo "--name $name: use letters, digits, '.', '_' or '-'" >&2; exit 2 ;;
esac

if [ -n "${IBKRTOOL_ENV_FILE:-}" ]; then
  set -a
  # shellcheck disable=SC1090
  source "$IBKRTOOL_ENV_FILE"
  set +a
fi
# The database must be named and, for SQLite, by an absolute path: cron's working directory is not yours, so the
# default sqlite:///ibkrtool.db would be a throwaway file wherever the job happens to start.
db_url=${IBKRTOOL_DB_URL:-}
prev=""
for arg in "$@"; do
  case "$arg" in --db=*) db_url=${arg#--db=} ;; esac
  [ "$prev" = "--db" ] && db_url=$arg
  prev=$arg
done
case "$db_url" in
  "") echo "set IBKRTOOL_DB_URL (or --db): postgresql://... or sqlite:////absolute/path.db" >&2; exit 2 ;;
  sqlite:////*) ;;
  sqlite:///*) echo "IBKRTOOL_DB_URL: use an absolute SQLite path (sqlite:////absolute/path.db)" >&2; exit 2 ;;
esac
bin=${IBKRTOOL_BIN:-ibkrtool}
log_dir=${IBKRTOOL_LOG_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/ibkrtool}
lock_dir=${IBKRTOOL_LOCK_DIR:-$log_dir}
mkdir -p "$log_dir" "$lock_dir"
log="$log_dir/$name.log"

note() { printf '%s [%s pid %d] %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$name" "$$" "$*" >>"$log"; }

# The lock lives as long as fd 9, i.e. until this script (and the ibkrtool it runs) exits, however it exits.
exec 9>>"$lock_dir/$name.lock"
if ! flock --nonblock 9; then
  note "skipped: the previous run still holds $lock_dir/$name.lock"
  exit 0
fi

if [ "$trading_day" -eq 1 ]; then
  # The Python next to ibkrtool knows the NYSE calendar (ibkrtool.calendars on exchange_calendars).
  py="$(dirname "$(command -v "$bin" || echo "$bin")")/python"
  if [ ! -x "$py" ]; then
    note "cannot check the calendar ($py not found): running anyway"
  elif ! "$py" -c 'import sys
from datetime import datetime, timezone
from ibkrtool import calendars
from ibkrtool.model import Instrument
today = datetime.now(calendars.NEW_YORK).date()
sys.exit(0 if calendars.sessions(Instrument.parse("SPY"), today, today) else 1)' 2>>"$log"; then
    note "skipped: NYSE has no regular session today"
    exit 0
  fi
fi

# Passwords in URLs never reach the log.
note "start: $bin $(printf '%s ' "$@" | sed -E 's#(://[^:/@ ]*):[^@ ]*@#\1:***@#g')"
rc=0
"$bin" "$@" >>"$log" 2>&1 </dev/null || rc=$?
note "end: exit $rc"
exit "$rc"
