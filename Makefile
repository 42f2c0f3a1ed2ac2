# The two commands a new user needs: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# The npm clients the tests drive (graphql-http's audit, graphql-ws, Apollo, puppeteer-core).
CLIENTS := tests/clients/node_modules/.package-lock.json

$(CLIENTS): tests/clients/package-lock.json
	npm ci --prefix tests/clients --no-audit --no-fund --silent

.PHONY: install serve test lint bench
install: $(BIN)/.installed

serve: $(BIN)/.installed
	$(BIN)/graphql-api serve

test: $(BIN)/.installed $(CLIENTS)
	$(BIN)/pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(BIN)/.installed
	$(BIN)/python -m bench.run $(BENCH_ARGS)
