# fraudrisk — run `make help` for the targets. A fresh machine needs only python3.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
EXTRAS ?= all,dev
export FRAUDRISK_HOME ?= $(CURDIR)/.fraudrisk
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: help install sysdeps assets oidc-provider demo test test-fast lint format typecheck bench clean



help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

# Bytecode is compiled at install time: with PYTHONDONTWRITEBYTECODE set (as on these machines)
# every process would otherwise compile each module it imports (≈ 7 s of a CLI call).
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --python $(BIN)/python --quiet --compile-bytecode -e ".[$(EXTRAS)]"
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## Create .venv if missing and install fraudrisk with every extra
	@$(BIN)/python -m compileall -q src components pipelines serving > /dev/null

sysdeps: ## Install the Debian packages of the local services (Redis, PostgreSQL, Java, Maven, Node.js, Chromium)
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v java >/dev/null || missing="$$missing openjdk-17-jre-headless"; \
	command -v mvn >/dev/null || missing="$$missing maven"; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# The dashboard's htmx and ECharts (and axe-core for its browser tests): npm ci of the pinned
# lockfile once, cached under ~/.cache/fraudrisk/dashboard-assets (`fraudrisk dashboard serve` too).
assets: install sysdeps ## Vendor the dashboard's front-end assets from npm (once, outside the repository)
	$(BIN)/python -m fraudrisk.dashboard.assets

demo: install sysdeps assets ## Run the main job end to end on embedded defaults (under FRAUDRISK_HOME)
	$(BIN)/fraudrisk demo

# Two workers, one test file per worker at a time: most slow tests wait on services and subprocesses.
PYTEST_WORKERS ?= 2
# The OIDC provider of tests/integration/identity: npm ci once, cached under ~/.cache/fraudrisk.
oidc-provider: ## Install the test OIDC provider (npm oidc-provider) outside the repository
	$(PYTHON) tests/integration/identity/oidc_provider/npm_cache.py

test: install sysdeps assets oidc-provider ## Install what the tests need, check the layers, then run the whole suite (slow tests included)
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile

# tests/unit only: in process, no subprocess nor service (tests/unit/conftest.py refuses them).
# One file per worker: a module's fixtures (a training run, a registered model) are built once.
test-fast: install ## Run the unit tests (tests/unit: no services, no subprocesses)
	$(BIN)/python -m pytest tests/unit -n $(PYTEST_WORKERS) --dist loadfile -q

lint: install ## ruff lint + format check + import-linter contracts (layers, no cycles)
	$(BIN)/ruff check src tests benchmarks serving components pipelines
	$(BIN)/ruff format --check src tests benchmarks serving components pipelines
	$(BIN)/lint-imports --no-cache

format: install ## Apply ruff formatting and safe fixes
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

typecheck: install ## mypy (strict) over src/
	$(BIN)/mypy

bench: install ## Print the benchmark tables (simulator, features, serving, stream, drift, policy), each beside its baseline
	$(BIN)/python benchmarks/simulator_throughput.py
	$(BIN)/python benchmarks/features_throughput.py
	$(BIN)/python benchmarks/online_features.py
	$(BIN)/python benchmarks/serving_latency.py --out docs/serving-benchmark.md
	$(BIN)/python benchmarks/stream_throughput.py --out docs/stream-benchmark.md
	$(BIN)/python benchmarks/drift_cost.py
	$(BIN)/python benchmarks/policy_rules.py
	$(BIN)/python benchmarks/policy_live.py
	$(BIN)/python benchmarks/policy_backtest.py $(if $(wildcard $(FRAUDRISK_HOME)/lake),--home $(FRAUDRISK_HOME))

clean: ## Remove the venv and the embedded state
	rm -rf $(VENV) .fraudrisk .pytest_cache .mypy_cache .ruff_cache
