#!/usr/bin/env bash
# On a machine with a CUDA GPU: run the CUDA tests, then a short CPU-vs-GPU benchmark per task
# family, printing its table last (under 5 minutes). Needs a CUDA build of torch in the venv,
# e.g. `make setup TORCH="torch==2.13.0"` on a machine whose pip index serves CUDA wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
"$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "no CUDA device visible to torch")'
"$PY" -m pytest -q -m cuda tests -p no:cacheprovider
"$PY" scripts/gpu_benchmark.py
