# The two commands of the README: `make demo` and `make test`.
# Both create the virtualenv on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test schema bench-ingest bench-sim clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/exbus demo $(if $(DEMO_SECONDS),--seconds $(DEMO_SECONDS))

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q

schema: $(VENV)/.installed
	$(BIN)/exbus schema export

bench-ingest: $(VENV)/.installed
	$(BIN)/python bench/ingest_replay.py --out bench/results/ingest_replay.json

bench-sim: $(VENV)/.installed
	$(BIN)/python bench/simulator_orders.py

clean:
	rm -rf $(VENV) .exbus .pytest_cache
