# kvsim — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP_RUN  := $(VENV)/.installed-run
STAMP_DEV  := $(VENV)/.installed-dev

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(STAMP_DEV): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,torch,web,webtest,ray,learned]'
	touch $@ $(STAMP_RUN)

## run: set up .venv and simulate the built-in default scenario
run: $(STAMP_RUN)
	$(BIN)/kvsim run --preset default --out runs/default

## test: set up .venv with dev extras, lint (ruff, mypy), run the test suite
test: $(STAMP_DEV)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy src/kvsim
	$(BIN)/python -m pytest

bench: $(STAMP_RUN)
	$(BIN)/python benchmarks/engine.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
