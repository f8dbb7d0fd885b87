"""Simulated coverage of rpbench's variance interval (the README's coverage table).

Beside it, the share of replications whose ``tail_warning`` is set (K too small for the kurtosis,
:func:`rpbench.metrics.tail_unreliable`).

Usage: .venv/bin/python scripts/variance_ci_coverage.py [replications]
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from scipy import stats

from rpbench.metrics import summarize

CASES = {
    "normal": (lambda e: e, 1.0),
    "score, x^2, mu=sigma=1, group mu": (lambda e: (1 + e) ** 2 * e, 30.0),
    "score, x^2, mu=sigma=1, group sigma": (lambda e: (1 + e) ** 2 * (e**2 - 1), 136.0),
    "lognormal(0, 1)": (lambda e: np.exp(e), (np.e - 1) * np.e),
}


def coverage(estimate, truth: float, k: int, replications: int, rng: np.random.Generator) -> tuple[float, float, float]:
    ours = chi = flagged = 0
    for _ in range(replications):
        g = estimate(rng.standard_normal(k))
        row = summarize(torch.from_numpy(g[:, None]), None, [1.0])
        ours += row["variance_lo"] <= truth <= row["variance_hi"]
        flagged += bool(row["tail_warning"])
        s2 = g.var(ddof=1)
        chi += (k - 1) * s2 / stats.chi2.ppf(0.975, k - 1) <= truth <= (k - 1) * s2 / stats.chi2.ppf(0.025, k - 1)
    return ours / replications, chi / replications, flagged / replications


def main() -> None:
    replications = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    rng = np.random.default_rng(2026)
    print(
        "| estimates | K = 200 | K = 1000 | K = 10 000 | chi-square, K = 1000 "
        f"| tail_warning, K = 200, 1000, 10 000 |  ({replications} replications)"
    )
    print("|---|---|---|---|---|---|")
    for name, (estimate, truth) in CASES.items():
        cells, flags, chi_1000 = [], [], 0.0
        for k in (200, 1000, 10_000):
            ours, chi, flagged = coverage(estimate, truth, k, replications, rng)
            cells.append(f"{ours:.0%}")
            flags.append(f"{flagged:.0%}")
            chi_1000 = chi if k == 1000 else chi_1000
        print(f"| {name} | {' | '.join(cells)} | {chi_1000:.0%} | {', '.join(flags)} |")


if __name__ == "__main__":
    main()
