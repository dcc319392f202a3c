# The two commands of the quick start: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test lint typecheck guards audit bench install install-dev docs-assets reference clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(STAMP)

# Third-party front-end files come from the npm registry (package-lock.json pins
# them by hash; .npmrc runs no install scripts), never from a CDN at run time:
# Swagger UI for the docs pages, marked and DOMPurify for the assistant's chat page,
# uPlot for the Platform Dashboard's charts.
# Only the files the pages load are copied into the package, so a wheel built
# after `make install` ships them.
VENDOR := src/xynergy/platform/static/vendor
SWAGGER_UI_FILES := swagger-ui-bundle.js swagger-ui-standalone-preset.js swagger-ui.css \
	LICENSE NOTICE package.json
MARKED_FILES := lib/marked.umd.js LICENSE package.json
DOMPURIFY_FILES := dist/purify.min.js LICENSE package.json
UPLOT_FILES := dist/uPlot.iife.min.js dist/uPlot.min.css LICENSE package.json

$(VENDOR)/.copied: package.json package-lock.json
	npm ci --loglevel=error
	mkdir -p $(VENDOR)/swagger-ui $(VENDOR)/marked $(VENDOR)/dompurify $(VENDOR)/uplot
	cp $(addprefix node_modules/swagger-ui-dist/,$(SWAGGER_UI_FILES)) $(VENDOR)/swagger-ui/
	cp $(addprefix node_modules/marked/,$(MARKED_FILES)) $(VENDOR)/marked/
	cp $(addprefix node_modules/dompurify/,$(DOMPURIFY_FILES)) $(VENDOR)/dompurify/
	cp $(addprefix node_modules/uplot/,$(UPLOT_FILES)) $(VENDOR)/uplot/
	touch $@

docs-assets: $(VENDOR)/.copied
install: $(STAMP) docs-assets
install-dev: $(DEV_STAMP) docs-assets

## Serve the all-in-one platform on embedded defaults (SQLite, in-process cache, offline AI).
## `make run PORT=8081 HOST=0.0.0.0` overrides XYNERGY_PORT / XYNERGY_HOST.
run: $(STAMP) docs-assets
	$(BIN)/xynergy migrate
	$(BIN)/xynergy bootstrap
	$(BIN)/xynergy serve $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

## Every check and test: lint, types, project guards, then the suite, on
## TEST_WORKERS processes (pytest-xdist; each has its own PostgreSQL database, Redis
## key prefix and SQLite files). A module stays on one process (--dist loadfile), so
## its module-wide fixtures (a browser, a year of data) are made once.
## TEST_WORKERS=0 runs it in this process.
TEST_WORKERS ?= 2
test: $(DEV_STAMP) docs-assets lint typecheck guards
	$(BIN)/python -m pytest $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile)

## The compose topology as local processes: PostgreSQL and Redis (CI's, or started),
## database xynergy_cluster, 3 replicas and nginx (deploy/proxy) on 127.0.0.1.
## Prints the URL and an admin key; Ctrl-C stops everything. CLUSTER_PORT=8800.
.PHONY: cluster test-cluster
cluster: $(STAMP) docs-assets
	$(BIN)/python tools/cluster.py $(if $(CLUSTER_PORT),--port $(CLUSTER_PORT))

## The cluster suite (pytest marker `cluster`, not part of `make test`): cross-replica
## correctness through nginx under load from wrk; -s shows each test's figures.
test-cluster: $(DEV_STAMP) docs-assets
	$(BIN)/python -m pytest -m cluster -s tests/cluster

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests tools bench
	$(BIN)/ruff format --check src tests tools bench

typecheck: $(DEV_STAMP)
	$(BIN)/mypy src tools

guards: $(DEV_STAMP)
	$(BIN)/python tools/check_guards.py src

## Known vulnerabilities in the installed Python packages and package-lock.json; a
## service that cannot be reached is reported, not failed (tools/audit.py).
audit: $(DEV_STAMP)
	$(BIN)/python tools/audit.py

## Benchmarks (not part of `make test`): print tables with ratios to a baseline.
## BENCH_POSTGRES=postgresql+asyncpg://... adds PostgreSQL rows where supported.
## BENCH_BEFORE_REF=<git ref> adds before/after rows where supported (SQLite contention).
## BENCH_REDIS=redis://127.0.0.1:6379/15 adds the Redis round-trip cost bench.
bench: $(DEV_STAMP)
	$(BIN)/python bench/run.py
	$(BIN)/python bench/bulk_import.py $(if $(BENCH_POSTGRES),--postgres $(BENCH_POSTGRES))
	$(BIN)/python bench/pagination.py $(if $(BENCH_POSTGRES),--postgres $(BENCH_POSTGRES))
	$(BIN)/python bench/ai_gateway.py
	$(BIN)/python bench/cache_hit_rate.py
	$(BIN)/python bench/cache_fill_memory.py
	$(BIN)/python bench/gateway_hot_path.py $(if $(BENCH_POSTGRES),--postgres $(BENCH_POSTGRES)) $(if $(BENCH_BEFORE_REF),--compare-ref $(BENCH_BEFORE_REF))
	$(BIN)/python bench/sqlite_contention.py $(if $(BENCH_BEFORE_REF),--compare-ref $(BENCH_BEFORE_REF))
	$(BIN)/python bench/intake_timing.py $(if $(BENCH_POSTGRES),--postgres $(BENCH_POSTGRES))
	$(BIN)/python bench/runtime_overhead.py $(if $(BENCH_POSTGRES),--postgres $(BENCH_POSTGRES))
	$(BIN)/python bench/runtime_memory.py $(if $(BENCH_POSTGRES),--postgres $(BENCH_POSTGRES))
	$(BIN)/python bench/assistant_latency.py
	$(BIN)/python bench/dashboard_status.py
	$(BIN)/python bench/dashboard_cost.py $(if $(BENCH_POSTGRES),--postgres-url $(BENCH_POSTGRES))
	$(BIN)/python bench/dashboard_overview.py $(if $(BENCH_POSTGRES),--postgres $(BENCH_POSTGRES))
	$(BIN)/python bench/per_request_cost.py $(if $(BENCH_POSTGRES),--postgres $(BENCH_POSTGRES))
	$(if $(BENCH_REDIS),$(BIN)/python bench/redis_command_cost.py --redis $(BENCH_REDIS))

## Regenerate the references: README scopes table, docs/settings.md, .env.example.
## Tests fail when one is out of date; `tools/gen_reference.py --check` prints the diff.
reference: $(STAMP)
	$(BIN)/python tools/gen_reference.py

## Build and tool caches only: the data (`xynergy migrate` prints where) is never removed.
clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache node_modules $(SWAGGER_UI)
