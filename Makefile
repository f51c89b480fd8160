# One-word entry points; CI calls the same ones.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT

.PHONY: run serve install install-dev migrate test lint format typecheck check lock bench bench-quick bench-instructions soak soak-quick clean openapi docs

run: install migrate serve ## install, migrate and serve on http://$(HOST):$(PORT)

serve:
	$(BIN)/uvicorn app.main:app --host $(HOST) --port $(PORT) --no-access-log --no-server-header \
		--no-proxy-headers --http app.core.http.server:HttpToolsProtocol

UV := $(VENV)/bootstrap/bin/uv
# uv trusts only the root certificates it bundles unless told otherwise; with this it uses
# the system's store, so a package index behind a private CA installed there works.
UV_TLS := --system-certs

# The environment is made without pip, and uv (itself from a hashed lock) installs the locks
# into it in seconds, compiling their bytecode once (rather than each test worker compiling
# it at its first import). Where uv cannot be had, or fails, pip is added and installs the
# same locks.
$(BIN)/python:
	$(PYTHON) -m venv --without-pip $(VENV)
	$(PYTHON) -m pip install --quiet --root-user-action=ignore --require-hashes --target $(VENV)/bootstrap \
		-r requirements/uv.txt || $(BIN)/python -m ensurepip --default-pip

define install_lock
	[ -x $(UV) ] && $(UV) pip install $(UV_TLS) --quiet --compile-bytecode --python $(BIN)/python \
		--require-hashes -r $(1) || { \
		[ ! -x $(UV) ] || echo "uv failed to install $(1); installing it with pip" >&2; \
		$(BIN)/python -m pip --version >/dev/null 2>&1 || $(BIN)/python -m ensurepip --default-pip; \
		$(BIN)/python -m pip install --quiet --require-hashes -r $(1); \
	}
endef

# Stamps keep repeated runs fast: dependencies reinstall only when a lock changes.
install: $(VENV)/.installed-main
install-dev: $(VENV)/.installed-dev

$(VENV)/.installed-main: requirements/main.txt | $(BIN)/python
	$(call install_lock,requirements/main.txt)
	touch $@

$(VENV)/.installed-dev: requirements/dev.txt | $(BIN)/python
	$(call install_lock,requirements/dev.txt)
	touch $@ $(VENV)/.installed-main

migrate:
	$(BIN)/alembic upgrade head

# Several workers when the tests share no server (tests/conftest.py decides). With COVERAGE=1,
# as CI runs it, the coverage of app/ is measured and held to the floor in pyproject.toml.
test: install-dev
	$(BIN)/pytest -n auto $(if $(COVERAGE),--cov --cov-report=) $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python -m scripts.openapi check
	$(BIN)/python -m scripts.migration_lint

# Regenerate docs/openapi.json, the committed API contract (refused while a breaking change
# is not acknowledged in CHANGELOG.md).
openapi: install-dev
	$(BIN)/python -m scripts.openapi write

# Regenerate docs/configuration.md from the Settings class (a test fails when it is stale).
docs: install-dev
	$(BIN)/python -m scripts.settings_docs write

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install-dev
	$(BIN)/mypy

check: lint typecheck test

# Regenerate the hashed locks (needs network access to the package index).
lock: $(BIN)/python
	$(UV) pip compile $(UV_TLS) pyproject.toml --generate-hashes --python-version 3.11 --no-header -q -o requirements/main.txt
	$(UV) pip compile $(UV_TLS) pyproject.toml --extra dev --generate-hashes --python-version 3.11 --no-header -q -o requirements/dev.txt

# wrk against the production server and its baselines on PostgreSQL and Redis (about eleven
# minutes; docs/benchmarks.md). bench-quick is the CI smoke run: every scenario, no thresholds.
bench: install
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-quick: install
	$(BIN)/python -m bench.run --quick $(BENCH_ARGS)

# Instructions per request on the hot paths, counted by callgrind: the same on a busy machine
# as on a quiet one (a minute or two; needs valgrind).
bench-instructions: install
	$(BIN)/python -m bench.instructions $(INSTRUCTIONS_ARGS)

# Mixed traffic through a PostgreSQL restart and a Redis outage on private servers, then the
# data checked; fails on any 500 or lost write. SOAK_SECONDS sets the length.
SOAK_SECONDS ?= 300
soak: install-dev
	$(BIN)/python -m scripts.soak --seconds $(SOAK_SECONDS)

soak-quick: install-dev
	$(BIN)/python -m scripts.soak --seconds 30

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
