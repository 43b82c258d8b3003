# Stratus: one Makefile for setting up, running and testing the project.
#   make run    set everything up, then serve the console on http://127.0.0.1:$(PORT)
#   make test   lint, type-check and run the whole test suite

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
MANAGE := $(PY) manage.py
# Rebuilt whenever pyproject.toml changes, so an unchanged checkout skips pip entirely.
INSTALL_STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
BENCH_ARGS ?=
LOAD_ARGS ?=

.PHONY: help setup run test lint fmt bench runtimes

help:
	@echo "make run     set up (venv, dependencies, database, blueprints, admin) and serve the console"
	@echo "make setup   only the set-up part of 'make run'"
	@echo "make test    ruff, mypy and the whole pytest suite (extra pytest args: PYTEST_ARGS=...)"
	@echo "make lint    ruff check, ruff format --check and mypy"
	@echo "make fmt     format and auto-fix with ruff"
	@echo "make bench   run the benchmarks (console Test, Lambda API invoke, Docker sandbox, load)"
	@echo "make runtimes  build the runtime container images (root, Docker, debootstrap)"

$(INSTALL_STAMP): pyproject.toml
	@if [ ! -x "$(PY)" ]; then \
		interpreter="$$(command -v python3.11 || true)"; \
		if [ -z "$$interpreter" ] && command -v python3 >/dev/null \
			&& python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then \
			interpreter="$$(command -v python3)"; \
		fi; \
		if [ -z "$$interpreter" ]; then \
			echo "Python 3.11 is required. On Debian: apt-get install python3.11 python3.11-venv" >&2; \
			exit 1; \
		fi; \
		echo "==> creating $(VENV) with $$interpreter"; \
		"$$interpreter" -m venv $(VENV) || { \
			echo "Could not create $(VENV). On Debian: apt-get install python3.11-venv" >&2; \
			rm -rf $(VENV); exit 1; }; \
	fi
	@echo "==> installing dependencies"
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $@

setup: $(INSTALL_STAMP)
	@echo "==> database migrations"
	$(MANAGE) migrate --noinput
	@echo "==> blueprints"
	$(MANAGE) sync_blueprints
	@echo "==> administrator account"
	$(MANAGE) ensure_admin
	@echo "==> static files"
	$(MANAGE) collectstatic --noinput --verbosity 0

run: setup
	$(MANAGE) run_stratus

lint: $(INSTALL_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

# The suite runs on the real stack: Postgres, Redis and a separate Celery worker (started by
# the test fixtures). These defaults are the local services; CI exports its own.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/stratus
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15

test: lint
	@echo "==> the invocation engine in embedded mode (SQLite, tasks in-process)"
	env -u DATABASE_URL -u CELERY_BROKER_URL STRATUS_VAR_DIR=var/embedded-test \
	$(BIN)/pytest -q -p no:cacheprovider invocations/tests/test_engine.py
	@echo "==> the whole suite on the real stack (Postgres, Redis, a separate worker)"
	DATABASE_URL="$${DATABASE_URL:-$(TEST_DATABASE_URL)}" \
	CELERY_BROKER_URL="$${CELERY_BROKER_URL:-$(TEST_BROKER_URL)}" \
	$(BIN)/pytest $(PYTEST_ARGS)

fmt: $(INSTALL_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(INSTALL_STAMP)
	$(PY) -m bench $(BENCH_ARGS)
	$(PY) -m bench.api_invoke $(BENCH_ARGS)
	$(PY) -m bench.sandboxes
	$(PY) -m bench.load $(LOAD_ARGS)

runtimes: $(INSTALL_STAMP)
	$(MANAGE) build_runtimes
