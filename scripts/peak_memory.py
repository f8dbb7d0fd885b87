"""Peak resident memory of ``rpbench run`` against K: the check that memory is flat in K.

Runs one cell (default: ``discrete-vae``, the 20×10 categorical VAE, with ``gumbel``) at each K in
its own process and reads the peak RSS the kernel recorded for it (``ru_maxrss`` of that child, from ``os.wait4``).
Prints a Markdown table: K, chunk size, peak RSS, wall seconds.  ``make bench-memory`` runs it.

    python scripts/peak_memory.py --samples 1000 10000 100000 --max-memory 512M
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd


def peak_of_run(task: str, estimator: str, samples: int, max_memory: str) -> tuple[float, int, float]:
    """(peak RSS in MiB, chunk size, wall seconds) of one ``rpbench run`` in a fresh process."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "rpbench", "run", "-t", task, "-e", estimator, "-K", str(samples)]
        command += ["--repeats", "1", "--max-memory", max_memory, "--out", out, "-q"]
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own peak, not the largest child's
        seconds = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{' '.join(command)} failed")
        peak = usage.ru_maxrss  # KiB on Linux
        (results,) = Path(out).glob("*/results.csv")
        chunk = int(pd.read_csv(results)["chunk"].iloc[0])
    return peak / 1024.0, chunk, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="discrete-vae")
    parser.add_argument("--estimator", default="gumbel")
    parser.add_argument("--samples", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--max-memory", default="512M")
    args = parser.parse_args()
    print(
        f"| K | chunk | peak RSS (MiB) | wall (s) |  task {args.task}, {args.estimator}, --max-memory {args.max_memory}"
    )
    print("|---|---|---|---|")
    for samples in args.samples:
        peak, chunk, seconds = peak_of_run(args.task, args.estimator, samples, args.max_memory)
        print(f"| {samples} | {chunk} | {peak:.0f} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
