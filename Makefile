# The README's two commands: `make run` and `make test`. Both set themselves up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

JS_STAMP := tests/js/node_modules/.package-lock.json

.PHONY: run test setup bench bench-quick clean browser proxies

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

# What the tests need beyond PyPI: the JS test dependencies (npm) and Debian's Chromium for the
# browser tests (Playwright drives /usr/bin/chromium; it never downloads a browser of its own).
$(JS_STAMP): tests/js/package.json tests/js/package-lock.json
	npm ci --prefix tests/js --no-audit --no-fund

browser:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

# Debian's nginx and Caddy for the reverse-proxy tests (tests/test_proxies.py runs them as this user,
# with their own prefix and a free port; the packages' system services are never used).
proxies:
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx)
	@command -v caddy >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq caddy)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m jobapp.devrun

test: $(STAMP) $(JS_STAMP) browser proxies
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench.peers

# The benchmark's quick regression guard: ratios to the FastAPI reference in one short run (a few minutes).
bench-quick: $(STAMP)
	$(BIN)/python -m pytest -m bench

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts bench/.venv-fastapi
