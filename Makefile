# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup demo test lint typecheck docs bench clean interop-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# A one-minute headless run of 120 stations against the embedded reference CSMS, with
# pass/fail thresholds as a CI job would set them.
demo: setup
	$(BIN)/fleet run --headless --stations 120 --spawn-rate 40 --duration 60s --profile demo \
		--slo 'BootNotification.p95 < 2s' --slo 'error_rate < 1%' \
		--slo 'lost_transaction_messages == 0'

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

# The reference in docs/ as a static site, into site/. --strict: a broken link or anchor
# (MkDocs' validation settings in mkdocs.yml) fails the build.
docs: setup
	$(BIN)/mkdocs build --strict --quiet

# The interop test (tests/interop) runs the stations against ocpp-rpc, a Node OCPP-J
# implementation; its pinned dependencies are installed here when npm is available.
# Without Node the test skips, and `make test` still works.
INTEROP       := tests/interop
INTEROP_STAMP := $(INTEROP)/node_modules/.installed
NPM           := $(shell command -v npm 2>/dev/null)

$(INTEROP_STAMP): $(INTEROP)/package.json $(INTEROP)/package-lock.json
	$(NPM) ci --prefix $(INTEROP) --no-audit --no-fund
	touch $@

interop-deps: $(if $(NPM),$(INTEROP_STAMP))

test: lint typecheck docs interop-deps
	$(BIN)/pytest -q -n 2 --dist loadfile

# Benchmarks (not tests): about 9 minutes; BENCH_ARGS=--quick for about 2. Writes
# bench-results.json and prints the table (see the README, Performance).
bench: setup
	$(BIN)/fleet bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
