# The two commands of the quick start: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test lint typecheck guards bench install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(STAMP)

install: $(STAMP)
install-dev: $(DEV_STAMP)

## Serve the all-in-one platform on embedded defaults (SQLite, in-process cache, offline AI).
run: $(STAMP)
	$(BIN)/xynergy migrate
	$(BIN)/xynergy bootstrap
	$(BIN)/xynergy serve

## Every check and test: lint, types, project guards, then the suite.
test: $(DEV_STAMP) lint typecheck guards
	$(BIN)/python -m pytest

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests tools bench
	$(BIN)/ruff format --check src tests tools bench

typecheck: $(DEV_STAMP)
	$(BIN)/mypy src tools

guards: $(DEV_STAMP)
	$(BIN)/python tools/check_guards.py src

## Benchmarks (not part of `make test`): print tables with ratios to a baseline.
## BENCH_POSTGRES=postgresql+asyncpg://... adds PostgreSQL rows where supported.
## BENCH_BEFORE_REF=<git ref> adds before/after rows where supported (SQLite contention).
bench: $(DEV_STAMP)
	$(BIN)/python bench/run.py
	$(BIN)/python bench/bulk_import.py $(if $(BENCH_POSTGRES),--postgres $(BENCH_POSTGRES))
	$(BIN)/python bench/pagination.py $(if $(BENCH_POSTGRES),--postgres $(BENCH_POSTGRES))
	$(BIN)/python bench/ai_gateway.py
	$(BIN)/python bench/sqlite_contention.py $(if $(BENCH_BEFORE_REF),--compare-ref $(BENCH_BEFORE_REF))
	$(BIN)/python bench/intake_timing.py $(if $(BENCH_POSTGRES),--postgres $(BENCH_POSTGRES))

clean:
	rm -rf $(VENV) .xynergy .pytest_cache .mypy_cache .ruff_cache
