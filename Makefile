# The two commands of a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.marba/dagster_home
SANDBOX_PORT ?= 8765
UI_PORT ?= 3000
# pytest-xdist workers; 2 on this 2-core machine.
TEST_WORKERS ?= 2

.PHONY: install home browser demo test test-fast lint format ui sandbox workers bench bench-full-cycle validate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

## DAGSTER_HOME with its dagster.yaml (embedded SQLite unless the directory already has one):
## `dagster` commands refuse a home that does not exist.
home: install
	@$(BIN)/python -c "from marba_dagster.instance import ensure_dagster_home; ensure_dagster_home()"

## Debian's chromium for the real-browser UI test (Playwright drives it; no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "install Debian's chromium (sudo apt-get install -y chromium) for the UI test"; fi; }

## The main job on the embedded default: install, demo data, every job once, a summary.
demo: install
	$(BIN)/marba demo --sandbox-port $(SANDBOX_PORT)

## The whole test suite (SQLite and PostgreSQL; slow end-to-end tests included).
test: install browser
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup -q

## ruff: the lint rules and the formatting of pyproject.toml (CI runs this first).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## Apply the formatting (and the lint fixes ruff can make safely).
format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Everything but the tests marked slow.
test-fast: install
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup -q -m "not slow"

## The Dagster UI (and daemon) on the demo data; the sandbox serves the outside APIs.
ui: home
	@test -f .marba/marba.db || $(MAKE) demo
	@eval "$$($(BIN)/marba sandbox-env --port $(SANDBOX_PORT))"; \
	$(BIN)/marba sandbox --port $(SANDBOX_PORT) >/dev/null 2>&1 & SANDBOX=$$!; \
	trap "kill $$SANDBOX" EXIT; \
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(UI_PORT)

sandbox: install
	$(BIN)/marba sandbox --port $(SANDBOX_PORT)

## Celery workers for MARBA_EXECUTOR=celery (WORKERS of them, one step at a time each) on the
## Redis broker (MARBA_CELERY_BROKER_URL, default redis://127.0.0.1:6379/0); Ctrl-C stops them.
WORKERS ?= 2
workers: home
	@export MARBA_CELERY_BROKER_URL="$${MARBA_CELERY_BROKER_URL:-redis://127.0.0.1:6379/0}" \
	  MARBA_CELERY_BACKEND_URL="$${MARBA_CELERY_BACKEND_URL:-redis://127.0.0.1:6379/1}" \
	  PATH="$(CURDIR)/$(BIN):$$PATH"; \
	trap 'kill $$(jobs -p) 2>/dev/null' EXIT INT TERM; \
	for i in $$(seq 1 $(WORKERS)); do \
	  $(BIN)/dagster-celery worker start -A dagster_celery.app -y celery_worker.yaml \
	    -n marba-$$i -- --pool=prefork --concurrency=1 & \
	done; wait

validate: home
	$(BIN)/dagster definitions validate -w workspace.yaml

bench: install
	$(BIN)/python -m bench.run

## The full daily cycle on PostgreSQL at four sizes (long: about an hour).
bench-full-cycle: install
	$(BIN)/python -m bench.full_cycle --brands 100 300 1000 3000 \
	  --overhead-sizes 100 300 1000 3000 --daemon-sizes 100 300 1000 3000

clean:
	rm -rf .marba
