# ibkrtool — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DB ?=
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

$(BIN)/ibkrtool: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

install: $(BIN)/ibkrtool ## Create .venv and install ibkrtool (editable) with dev extras

run: install ## Run the demo pipeline (simulated gateway + embedded SQLite; DB=postgresql://... for PostgreSQL)
	@bash scripts/demo.sh "$(DB)"

test: install ## Run the test suite
	$(BIN)/pytest

lint: install ## ruff check
	$(BIN)/ruff check .

format: install ## ruff format + fix imports
	$(BIN)/ruff check --fix --select I .
	$(BIN)/ruff format .

bench: install ## Run every benchmark in bench/ (needs PostgreSQL binaries)
	@set -e; for f in bench/*.py; do echo "== $$f"; $(BIN)/python $$f; done

clean: ## Remove build output and caches (keeps .venv and the database)
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache

.PHONY: help install run test lint format bench clean
