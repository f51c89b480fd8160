# One-word entry points; CI calls the same ones.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT

.PHONY: run serve install install-dev migrate test lint format typecheck check lock bench bench-quick clean

run: install migrate serve ## install, migrate and serve on http://$(HOST):$(PORT)

serve:
	$(BIN)/uvicorn app.main:app --host $(HOST) --port $(PORT) --no-access-log --no-server-header --proxy-headers

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamps keep repeated runs fast: dependencies reinstall only when a lock changes.
install: $(VENV)/.installed-main
install-dev: $(VENV)/.installed-dev

$(VENV)/.installed-main: requirements/main.txt | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements/main.txt
	touch $@

$(VENV)/.installed-dev: requirements/dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements/dev.txt
	touch $@ $(VENV)/.installed-main

migrate:
	$(BIN)/alembic upgrade head

test: install-dev
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install-dev
	$(BIN)/mypy

check: lint typecheck test

# Regenerate the hashed locks (needs network access to the package index).
lock: $(BIN)/python
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --generate-hashes --python-version 3.11 --no-header -q -o requirements/main.txt
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 --no-header -q -o requirements/dev.txt

# wrk against the production server and its baselines on PostgreSQL and Redis (about ten
# minutes; docs/benchmarks.md). bench-quick is the CI smoke run: every scenario, no thresholds.
bench: install
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-quick: install
	$(BIN)/python -m bench.run --quick $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
