# rpbench: `make run` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test lint format bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: setup ## the main job: every estimator on the default Gaussian sweep
	$(BIN)/rpbench run --task gaussian --estimator all

test: setup lint
	$(BIN)/python -m pytest -q --benchmark-disable

lint: setup
	$(BIN)/ruff check rpbench tests scripts
	$(BIN)/ruff format --check rpbench tests scripts

format: setup
	$(BIN)/ruff format rpbench tests scripts
	$(BIN)/ruff check --fix rpbench tests scripts

bench: setup
	$(BIN)/python -m pytest tests/benchmarks -q --benchmark-only --benchmark-autosave --benchmark-columns=mean,stddev,ops,rounds

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
