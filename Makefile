# queuebench: `make bench` runs the benchmark, `make test` runs the tests.
# Both set up what is missing first (project venv, backend venvs, brokers).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup bench quick test test-extended test-fast lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

setup: $(VENV)/.installed
	$(BIN)/python -m harness setup

bench: setup
	$(BIN)/python -m harness run --scenario all

quick: setup
	$(BIN)/python -m harness run --scenario all --quick

test: $(VENV)/.installed
	$(BIN)/python -m harness setup --test-tools
	$(BIN)/python -m pytest -m "not extended"

test-extended: $(VENV)/.installed
	$(BIN)/python -m harness setup --test-tools
	$(BIN)/python -m pytest -m extended

test-fast: $(VENV)/.installed
	$(BIN)/python -m pytest -m "not slow"

lint: $(VENV)/.installed
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .venvs
