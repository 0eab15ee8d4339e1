#!/usr/bin/env bash
# The demo pipeline on the embedded database. Each step is added here as its command lands.
set -euo pipefail
DB_URL="${1:-}"
BIN="${VENV:-.venv}/bin"
export IBKRTOOL_DB_URL="${DB_URL:-${IBKRTOOL_DB_URL:-sqlite:///demo/ibkrtool.db}}"
mkdir -p demo
step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

step "ibkrtool --version"
"$BIN/ibkrtool" --version
step "the pipeline so far"
"$BIN/ibkrtool" --help
