# shellcheck shell=bash
# Helpers to run `ibkrtool sim` in the background for a script: source this file, then
#   sim_start BIN LOGFILE [sim options...]   sets SIM_PID and SIM_PORT (a free loopback port) and waits until it listens
#   sim_stop                                 stops it (safe to call twice; call it from an EXIT trap)

# A free loopback port: bind port 0, read what the kernel chose, release it.
free_port() {
  "$1" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

sim_start() {
  local bin=$1 log=$2
  shift 2
  SIM_PORT=$(free_port "$bin/python")
  # Wide columns so the "listening on" log line is never wrapped.
  COLUMNS=200 "$bin/ibkrtool" sim --host 127.0.0.1 --port "$SIM_PORT" "$@" >"$log" 2>&1 &
  SIM_PID=$!
  local waited=0
  until grep -q "listening on" "$log" 2>/dev/null; do
    if ! kill -0 "$SIM_PID" 2>/dev/null; then
      echo "ibkrtool sim exited at start; its log ($log):" >&2
      cat "$log" >&2
      SIM_PID=
      return 1
    fi
    if [ "$waited" -ge 300 ]; then
      echo "ibkrtool sim did not listen within 30 s; see $log" >&2
      return 1
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  export SIM_PID SIM_PORT
}

sim_stop() {
  if [ -n "${SIM_PID:-}" ] && kill -0 "$SIM_PID" 2>/dev/null; then
    kill -TERM "$SIM_PID" 2>/dev/null || true
    wait "$SIM_PID" 2>/dev/null || true
  fi
  SIM_PID=
}
