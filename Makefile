# hopshop — `make up` and `make test` are all a newcomer needs.
# Needs only python3 (>= 3.11) and pip: uv is installed with pip when missing.

SHELL := /bin/bash
PYTHON ?= python3
# uv from PATH, else the one pip installs (`python3 -m uv` works wherever pip put it).
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
PYTEST_ARGS ?=

.PHONY: help up down status logs uv sync test check lint typecheck fmt auth bench-auth bench-dpop bench-orders clean

help:
	@echo "make up          the system (valkey, kafka, services) until Ctrl-C; UP_ARGS=-d or --vulnerable"
	@echo "make down        stop a stack started with UP_ARGS=-d"
	@echo "make status      what runs, and whether it is healthy"
	@echo "make logs        follow the logs (COMPONENT=auth for one)"
	@echo "make test        every test: unit, integration, e2e, attacks (real servers; about 6 min)"
	@echo "make lint        ruff check and format check"
	@echo "make typecheck   mypy (strict for hopauth)"
	@echo "make check       lint + typecheck + test"
	@echo "make auth        the auth service alone on http://127.0.0.1:8001"
	@echo "make bench-auth  token-exchange benchmark (prints req/s and p50/p95/p99)"
	@echo "make bench-dpop  what DPoP costs: req/s and server CPU per request, bearer vs DPoP"
	@echo "make bench-orders  orders through the gateway on a local stack (latency, confirmation, cache hits)"

uv:
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || { \
		echo "uv not found: installing it with pip"; \
		$(PYTHON) -m pip install --user --quiet uv 2>/dev/null \
		|| $(PYTHON) -m pip install --quiet uv 2>/dev/null \
		|| $(PYTHON) -m pip install --user --quiet --break-system-packages uv; }

sync: uv
	@$(UV) sync --frozen --all-packages

# A temp dir of our own: pytest prunes old runs under /tmp, which breaks a run going on beside it.
test: sync
	@mkdir -p var
	@$(UV) run --frozen pytest --basetemp=var/pytest $(PYTEST_ARGS)

lint: sync
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen ruff format --check .

typecheck: sync
	@$(UV) run --frozen mypy

check: lint typecheck test

fmt: sync
	@$(UV) run --frozen ruff format .
	@$(UV) run --frozen ruff check --fix .

# The `hopshop` command (stack/) runs everything; services not built yet are skipped.
up: sync
	@$(UV) run --frozen hopshop up $(UP_ARGS)

down: sync
	@$(UV) run --frozen hopshop down

status: sync
	@$(UV) run --frozen hopshop status

logs: sync
	@$(UV) run --frozen hopshop logs $(COMPONENT) -f

auth: sync
	@mkdir -p var
	@AUTH_DATABASE_URL=$${AUTH_DATABASE_URL:-sqlite:///var/auth.db} \
		$(UV) run --frozen hopshop-auth serve --port $${AUTH_PORT:-8001}

bench-auth: sync
	@$(UV) run --frozen python bench/bench_auth.py $(BENCH_ARGS)

bench-dpop: sync
	@$(UV) run --frozen python bench/bench_dpop.py $(BENCH_ARGS)

bench-orders: sync
	@$(UV) run --frozen python bench/bench_orders.py $(BENCH_ARGS)

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
