# The two commands a new user needs: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

COMPLIANCE := tests/compliance/node_modules/.package-lock.json

$(COMPLIANCE): tests/compliance/package-lock.json
	npm ci --prefix tests/compliance --no-audit --no-fund --silent

.PHONY: install serve test lint bench
install: $(BIN)/.installed

serve: $(BIN)/.installed
	$(BIN)/graphql-api serve

test: $(BIN)/.installed $(COMPLIANCE)
	$(BIN)/pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(BIN)/.installed
	$(BIN)/python -m bench.run $(BENCH_ARGS)
