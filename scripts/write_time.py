"""Time spent writing results during a 2,000-cell Gaussian sweep (README, "Output").

Runs ``pathwise`` on 4 test functions × 500 values of σ (K = 10, one timed repeat), so that the
measurement is cheap and the writer's share shows, and reports the wall-clock seconds spent
inside :meth:`rpbench.results.RunWriter.add` against the whole run::

    .venv/bin/python scripts/write_time.py            # prints cells, writer seconds, total seconds
"""

from __future__ import annotations

import argparse
import tempfile
import time

import rpbench
from rpbench.results import RunWriter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sigmas", type=int, default=500, help="values of sigma (cells = 4 x this)")
    args = parser.parse_args()
    spent, calls = [0.0], [0]
    add = RunWriter.add

    def timed(self: RunWriter, rows: list, coords: dict) -> None:
        start = time.perf_counter()
        add(self, rows, coords)
        spent[0] += time.perf_counter() - start
        calls[0] += 1

    RunWriter.add = timed  # type: ignore[method-assign]
    sigmas = [round(0.5 + i * 0.005, 3) for i in range(args.sigmas)]
    params = {"fn": ["quadratic", "cos", "step", "linear"], "sigma": sigmas, "k": 0.5}
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        run = rpbench.run(task="gaussian", estimators="pathwise", params=params, samples=10, repeats=1, out=out)
        total = time.perf_counter() - start
    print(f"cells {calls[0]}  rows {len(run.results)}  writer seconds {spent[0]:.2f}  total seconds {total:.2f}")


if __name__ == "__main__":
    main()
