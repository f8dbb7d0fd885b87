"""How much a busy machine moves rpbench's costs: the same cells timed on the machine as it is and
beside two CPU hogs, in seconds (``sec_per_estimate``) and in reference workloads (``relative_cost``).

Usage: ``python scripts/timing_under_load.py [THREADS ...]`` (torch threads while timing, default
``1 0``: one thread, and the process's own).  Prints a Markdown table per thread count: per cell,
the busy/quiet ratio of each cost with both medians' intervals, and the load averages.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import rpbench

CELLS = {
    "suite": {"name": "load", "seeds": [0]},
    "run": [
        {
            "task": "gaussian",
            "params": {"fn": "quadratic"},
            "estimators": ["pathwise", "score", "mvd"],
            "samples": 1000,
        },
        {
            "task": "discrete-vae",
            "params": {"latents": 2, "categories": 3, "minibatch": 8, "hidden": 32},
            "estimators": ["score", "gumbel", "rebar"],
            "samples": 200,
            "batch": 2,
        },
    ],
}


@contextmanager
def hogs(count: int = 2) -> Iterator[None]:
    """``count`` processes spinning on the CPU while the block runs."""
    spinning = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    time.sleep(1.0)
    try:
        yield
    finally:
        for process in spinning:
            process.kill()
            process.wait()


def measured(threads: int) -> rpbench.Run:
    suite = {**CELLS, "suite": {**CELLS["suite"], "timing_threads": threads}}
    return rpbench.run(suite=suite)


def interval(row: object, metric: str) -> str:
    return f"{row[metric]:.3g} [{row[metric + '_lo']:.3g}, {row[metric + '_hi']:.3g}]"  # type: ignore[index]


def table(threads: int) -> str:
    quiet = measured(threads).results.drop_duplicates("cell_seed").reset_index(drop=True)
    with hogs():
        busy = measured(threads).results.drop_duplicates("cell_seed").reset_index(drop=True)
    lines = [
        f"timing threads: {threads or 'the process own'}; load average quiet {quiet['load_average'].mean():.1f}, "
        f"busy {busy['load_average'].mean():.1f} ({os.cpu_count()} CPUs)",
        "",
        "| cell | µs per estimate, quiet | busy | busy ÷ quiet | relative cost, quiet | busy | busy ÷ quiet |",
        "|---|---|---|---:|---|---|---:|",
    ]
    for (_, q), (_, b) in zip(quiet.iterrows(), busy.iterrows(), strict=True):
        where = f" σ={q['sigma']:g} k={q['k']:g}" if q["task"] == "gaussian" else ""
        cell = f"{q['task']}{where} {q['estimator']}"
        seconds = [
            interval({k: v * 1e6 for k, v in r.items() if k.startswith("sec_per")}, "sec_per_estimate") for r in (q, b)
        ]
        relative = [interval(r, "relative_cost") for r in (q, b)]
        lines.append(
            f"| {cell} | {seconds[0]} | {seconds[1]} | {b['sec_per_estimate'] / q['sec_per_estimate']:.2f}× "
            f"| {relative[0]} | {relative[1]} | {b['relative_cost'] / q['relative_cost']:.2f}× |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    for threads in [int(a) for a in argv] or [1, 0]:
        print(table(threads), end="\n\n", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
