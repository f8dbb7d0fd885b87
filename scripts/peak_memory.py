"""Peak resident memory of ``rpbench run`` against K: the check that memory is flat in K.

Runs one cell (default: ``discrete-vae``, the 20×10 categorical VAE, with ``gumbel``) at each K in
its own process and reads the peak RSS the kernel recorded for it (``ru_maxrss`` of that child, from ``os.wait4``).
Prints a Markdown table: K, chunk size, peak RSS, wall seconds.  ``make bench-memory`` runs it.

    python scripts/peak_memory.py --samples 1000 10000 100000 --max-memory 512M
    python scripts/peak_memory.py --samples 100 1000 -p data=mnist5k -p hidden=512 -p hidden2=256 -p minibatch=100

``scripts/bench_limit.py`` reuses :func:`peak_of_run` for its peak-RSS column.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd


def peak_of_run(
    task: str,
    estimator: str,
    samples: int,
    max_memory: str,
    params: Sequence[str] = (),
    batch: int = 1,
    threads: int | None = None,
) -> tuple[float, int, float]:
    """(peak RSS in MiB, chunk size, wall seconds) of one ``rpbench run`` in a fresh process.

    ``params`` are ``-p key=value`` task parameters, ``batch`` is ``-n``; ``threads`` (where given)
    caps the child's torch threads (``OMP_NUM_THREADS``) and its ``--timing-threads``.
    """
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "rpbench", "run", "-t", task, "-e", estimator, "-K", str(samples)]
        command += ["-n", str(batch), *[arg for p in params for arg in ("-p", p)]]
        command += ["--repeats", "1", "--min-time", "0", "--no-cache", "--max-memory", max_memory, "--out", out, "-q"]
        env = dict(os.environ)
        if threads is not None:
            command += ["--timing-threads", str(threads)]
            env.update({name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")})
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=env)
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
    parser.add_argument("--param", "-p", action="append", default=[], help="a task parameter key=value (repeatable)")
    parser.add_argument("--batch", "-n", type=int, default=1)
    args = parser.parse_args()
    params = "".join(f" -p {p}" for p in args.param)
    print(
        f"| K | chunk | peak RSS (MiB) | wall (s) |  task {args.task}{params}, {args.estimator}, n = {args.batch}, "
        f"--max-memory {args.max_memory}"
    )
    print("|---|---|---|---|")
    for samples in args.samples:
        peak, chunk, seconds = peak_of_run(args.task, args.estimator, samples, args.max_memory, args.param, args.batch)
        print(f"| {samples} | {chunk} | {peak:.0f} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
