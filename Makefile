# The commands the README gives. Every target creates or updates .venv itself (uv + uv.lock).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# uv from PATH, else as a module of $(PYTHON) (installed with pip on first use).
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := $(PYTHON) -m uv
endif
MANIFEST := dbt_project/target/manifest.json
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: demo test dev serve prod-up prod-down bench lint manifest install clean

install: $(VENV)/.installed

# --compile-bytecode: every process (refresh, a run worker, dbt) then starts from .pyc files,
# not by compiling dagster's and dbt's sources, also where PYTHONDONTWRITEBYTECODE is set.
$(VENV)/.installed: pyproject.toml uv.lock Makefile
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	touch $@

# Dagster loads the dbt project from its manifest; build it whenever a dbt file changes.
$(MANIFEST): $(VENV)/.installed $(shell find dbt_project -name '*.sql' -o -name '*.yml' | grep -v target/)
	cd dbt_project && ../$(BIN)/dbt parse --profiles-dir . --quiet
	touch $@

manifest: $(MANIFEST)

demo: $(MANIFEST)
	MUSIC_ANALYTICS_HOME=$${MUSIC_ANALYTICS_HOME:-$(CURDIR)/data/demo} $(BIN)/music-analytics demo

# Three pytest-xdist workers (on 2 cores: most tests wait on subprocesses), each module's tests
# on one worker (its fixtures built once), handed out in collection order, where conftest puts
# the slowest modules first (xdist would order them by test count: the Spark parity module,
# 6.5 min for 6 tests, came last and was the run's tail).
TEST_WORKERS ?= 3
test: $(MANIFEST)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder

dev: $(MANIFEST)
	@# dagster dev re-parses the dbt project with the `dbt` on PATH: put the venv first.
	PATH="$(CURDIR)/$(BIN):$$PATH" DAGSTER_HOME=$$($(BIN)/music-analytics dagster-home) \
		$(BIN)/dagster dev -w workspace.yaml

# The dashboard and HTTP API over the exports (of the demo unless MUSIC_ANALYTICS_HOME is set).
serve: $(VENV)/.installed
	MUSIC_ANALYTICS_HOME=$${MUSIC_ANALYTICS_HOME:-$(CURDIR)/data/demo} $(BIN)/music-analytics serve

# The production topology on this machine (README "Deployment"): PostgreSQL in a cluster of
# its own, the code server, dagster-daemon, dagster-webserver and serve as separate processes.
prod-up: $(MANIFEST)
	$(BIN)/music-analytics prod up

prod-down: $(VENV)/.installed
	$(BIN)/music-analytics prod down

bench: $(MANIFEST)
	$(BIN)/python -m bench

lint: $(VENV)/.installed
	$(BIN)/ruff check music_analytics music_analytics_tests bench
	$(BIN)/ruff format --check music_analytics music_analytics_tests bench

clean:
	rm -rf $(VENV) dbt_project/target dbt_project/logs
