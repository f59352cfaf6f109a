# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup demo test lint typecheck docs bench clean interop-deps test-tools

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

# Real parts from Debian for the integration tests: a Prometheus server (scrapes a real
# run: tests/metrics/test_prometheus.py) and Chromium with its driver (the web UI's Fleet
# tab: tests/e2e/test_fleet_tab.py). Installed here when missing, as root with apt-get;
# otherwise this says which tests will skip, and why.
PROMETHEUS   ?= prometheus
CHROMIUM     ?= /usr/bin/chromium
CHROMEDRIVER ?= /usr/bin/chromedriver
APT_GET      ?= apt-get
AS_ROOT      ?= $(shell [ "$$(id -u)" = 0 ] && echo yes)

test-tools:
	@missing=""; \
	command -v $(PROMETHEUS) >/dev/null 2>&1 || missing="$$missing prometheus"; \
	[ -x $(CHROMIUM) ] || missing="$$missing chromium"; \
	[ -x $(CHROMEDRIVER) ] || missing="$$missing chromium-driver"; \
	if [ -n "$$missing" ] && [ -n "$(AS_ROOT)" ] && command -v $(APT_GET) >/dev/null 2>&1; then \
		echo "make test: installing$$missing (Debian packages the integration tests run)"; \
		$(APT_GET) update -qq >/dev/null && \
		DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq --no-install-recommends \
			$$missing >/dev/null || echo "make test: WARNING: apt-get install$$missing failed"; \
	elif [ -n "$$missing" ]; then \
		echo "make test: WARNING: missing$$missing, and not root with apt-get to install them:"; \
		case "$$missing" in *prometheus*) \
			echo "  tests/metrics/test_prometheus.py will SKIP (apt-get install prometheus)";; esac; \
		case "$$missing" in *chromium*) \
			echo "  tests/e2e/test_fleet_tab.py will SKIP (apt-get install chromium chromium-driver)";; esac; \
	fi

test: lint typecheck docs interop-deps test-tools
	$(BIN)/pytest -q -n 2 --dist loadfile

# Benchmarks (not tests): about 9 minutes; BENCH_ARGS=--quick for about 2. Writes
# bench-results.json and prints the table (see the README, Performance).
bench: setup
	$(BIN)/fleet bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
