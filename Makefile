# todopy: `make run` serves the app, `make test` runs every test. Both install what they need.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3
# apt needs root; use sudo when we are not.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_INSTALL := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends

PACKAGE_SOURCES := setup.py pyproject.toml $(shell find todopy sql -name '*.py' -o -name '*.sql' 2>/dev/null)
FRONT_SOURCES := $(shell find static/src static/build.mjs static/package.json static/package-lock.json 2>/dev/null)
FRONT_BUILT := $(if $(wildcard static/package.json),static/dist/index.html)

.PHONY: all install run dist test test-python test-js typecheck bench fuzz soak clean system-deps browser-deps test-cluster schema

all: install

# -- installing ---------------------------------------------------------------

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel setuptools

# psycopg2 compiles against libpq: install its headers (libpq-dev) when pg_config is missing.
system-deps:
	@command -v pg_config >/dev/null || { $(SUDO) apt-get update -q && $(APT_INSTALL) libpq-dev; }

# Dependencies, pinned by constraints.txt; re-run only when they change.
$(VENV)/.deps: setup.py constraints.txt | $(BIN)/python
	$(MAKE) system-deps
	$(BIN)/pip install -q -c constraints.txt '.[test,bench]'
	touch $@

static/node_modules/.package-lock.json: static/package.json static/package-lock.json
	cd static && npm ci --no-audit --no-fund --loglevel=error

static/dist/index.html: static/node_modules/.package-lock.json $(FRONT_SOURCES)
	cd static && npm run build

# The package itself, installed (not editable) so that tests run what users get,
# package data included; reinstalled whenever a source file changes.
$(VENV)/.installed: $(VENV)/.deps $(PACKAGE_SOURCES) $(FRONT_BUILT)
	rm -rf build  # a stale build/lib would resurrect deleted files
	$(BIN)/pip install -q --no-deps --force-reinstall .
	touch $@

install: $(VENV)/.installed

# An sdist and a wheel in dist/, each carrying the SQL and the built front end
# (through the todopy/sql and todopy/assets symlinks); the wheel is built from
# the sdist, so a file missing from the sdist fails here.
dist: $(VENV)/.deps $(FRONT_BUILT)
	rm -rf build dist
	$(BIN)/python -m build --outdir dist .

# -- running ------------------------------------------------------------------

run: install
	$(BIN)/todopy serve $(if $(PORT),--port $(PORT))

# sql/schema.sql: the schema the migrations add up to, dumped from a throwaway embedded PostgreSQL
# (tests/schema.py). Run it after adding or changing a migration, and commit the result: the suite
# fails until the snapshot matches.
schema: install
	$(BIN)/python -m tests.schema

# -- testing ------------------------------------------------------------------

# Headless Chromium for the browser tests, from Debian (Playwright drives it; it downloads nothing).
browser-deps:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ $(SUDO) apt-get update -q && $(APT_INSTALL) chromium chromium-driver; }
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -q && $(APT_INSTALL) wrk; }

test: install browser-deps test-js test-python typecheck

test-js: $(FRONT_BUILT)
	@if [ -f static/package.json ]; then cd static && npm test; fi

# mypy over the whole package and the benchmarks, as configured in pyproject.toml (last, so the tests run even when types fail).
typecheck: $(VENV)/.deps
	$(BIN)/mypy

test-python: install
	$(BIN)/python -m pytest -p no:cacheprovider -q $(PYTEST_ARGS)

# The multi-host and failover proofs (tests/cluster/): real network namespaces and a real
# standby, so root is needed for the first (it says so and skips without). One PASS/FAIL
# line per check; each proof cleans up its namespaces and processes however it ends.
test-cluster: install
	@command -v ip >/dev/null || { $(SUDO) apt-get update -q && $(APT_INSTALL) iproute2; }
	@status=0; \
	$(BIN)/python -m tests.cluster.hosts || status=1; \
	$(BIN)/python -m tests.cluster.failover || status=1; \
	exit $$status

# -- measuring ----------------------------------------------------------------

bench: install browser-deps
	$(BIN)/python -m bench.run $(BENCH_ARGS)

fuzz: install
	TODOPY_FUZZ_EXAMPLES=1000 $(BIN)/python -m pytest -p no:cacheprovider -q tests/test_fuzz.py

# The soak (tests/test_soak.py), 5 minutes unless SOAK_SECONDS says otherwise (`make test` runs 30 s of it);
# -s shows its report as it goes, every minute.
SOAK_SECONDS ?= 300
soak: install
	$(BIN)/python -m pytest -p no:cacheprovider -q -s tests/test_soak.py --soak-seconds=$(SOAK_SECONDS) $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info static/dist static/node_modules test-artifacts
