# rpbench: `make run` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test test-fast lint format bench bench-compare bench-peers bench-memory bench-limit regress baseline test-browser gpu-check clean

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

test-fast: setup ## the inner loop: every test not marked slow or dask, no lint (about 2 min on two cores)
	$(BIN)/python -m pytest -q --benchmark-disable -m "not slow and not dask"

lint: setup ## ruff (check + format) and mypy (settings in pyproject.toml)
	$(BIN)/ruff check rpbench tests scripts
	$(BIN)/ruff format --check rpbench tests scripts
	$(BIN)/mypy rpbench

format: setup
	$(BIN)/ruff format rpbench tests scripts
	$(BIN)/ruff check --fix rpbench tests scripts

bench: setup ## speed benchmarks; saves JSON under .benchmarks/
	$(BIN)/python -m pytest tests/benchmarks -q --benchmark-only --benchmark-autosave --benchmark-columns=mean,stddev,ops,rounds

bench-compare: setup ## re-run the benchmarks; fail if a mean is 25% slower than the last saved run
	$(BIN)/python -m pytest tests/benchmarks -q --benchmark-only --benchmark-compare --benchmark-compare-fail=mean:25% --benchmark-columns=mean,stddev,ops,rounds

bench-memory: setup ## peak RSS of one discrete-vae cell at K = 1e3, 1e4, 1e5 (flat in K; a few minutes)
	$(BIN)/python scripts/peak_memory.py $(MEMORY_ARGS)

bench-limit: setup ## our engine vs the limit on the VAE tasks, defaults and the literature's scale; writes results/limit/ (about 6 min)
	$(BIN)/python scripts/bench_limit.py $(LIMIT_ARGS)

bench-peers: setup $(VENV)/.peers-installed ## ours vs optax.monte_carlo and Storchastic, interleaved; writes results/peers/
	$(BIN)/python scripts/bench_peers.py $(PEERS_ARGS)

# The optional `bench-peers` extra (optax/JAX, Storchastic's pure-python dependencies) next to the
# pinned torch, then storchastic itself with --no-deps (an extra cannot say that), so that pip never
# replaces $(TORCH).  `make test` never installs any of it.
$(VENV)/.peers-installed: $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet "$(TORCH)" -e ".[bench-peers]"
	$(BIN)/python -m pip install --quiet --no-deps storchastic==0.3.7
	touch $@

regress: setup ## run tasks/ci.toml and compare it with the committed baseline (exit 1 on a regression); HISTORY=FILE also records it
	rm -rf results/regress
	$(BIN)/rpbench run --suite tasks/ci.toml --out results/regress --quiet
	$(if $(HISTORY),$(BIN)/rpbench record "$$(ls -d results/regress/*/ | tail -n 1)" --history $(HISTORY))
	$(BIN)/rpbench compare results/baseline/ci.csv "$$(ls -d results/regress/*/ | tail -n 1)"

baseline: setup ## refresh results/baseline/ci.csv and its sidecar ci.json from tasks/ci.toml (commit both)
	rm -rf results/regress
	$(BIN)/rpbench run --suite tasks/ci.toml --out results/regress --quiet
	cp "$$(ls -d results/regress/*/ | tail -n 1)results.csv" results/baseline/ci.csv
	cp "$$(ls -d results/regress/*/ | tail -n 1)run.json" results/baseline/ci.json

test-browser: setup ## the dashboard in headless Chromium (Debian's package chromium); keeps its screenshot in docs/figures/dashboard.png
	RPBENCH_DASHBOARD_SHOT=docs/figures/dashboard.png $(BIN)/python -m pytest -q --benchmark-disable -rs tests/views/test_dashboard.py

gpu-check: setup ## on a CUDA machine: CUDA tests and a CPU-vs-GPU benchmark table
	PYTHON=$(BIN)/python scripts/gpu_check.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
