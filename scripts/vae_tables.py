"""The README's per-task VAE tables ("The VAE tasks") from run folders, through the Python API.

    .venv/bin/rpbench run --task discrete-vae --estimator all --out runs/d
    .venv/bin/python scripts/vae_tables.py runs/d/*
    .venv/bin/python scripts/vae_tables.py PAPER_RUN -w latents=20,200   # tasks/paper.toml's VAE cells

For each task of each run (after ``-w key=value`` filters, as ``rpbench report -w``): its truth, K
and n, then one row per estimator with the encoder's variance and ‖bias‖ (with their intervals),
the decoder's variance and the cost per estimate.
"""

from __future__ import annotations

import argparse
import math

import pandas as pd

import rpbench


def short(value: float) -> str:
    """Three significant digits, as the README prints them."""
    if not math.isfinite(value):
        return "–"
    return f"{value:.3g}"


def table(run: rpbench.Run) -> str:
    """One task's table, in Markdown."""
    rows = run.results
    encoder = rows[rows["group"] == "encoder"].set_index("estimator")
    decoder = rows[rows["group"] == "decoder"].set_index("estimator")
    first = encoder.iloc[0]
    lines = [
        f"truth: {first['truth']} (exact_se {short(float(first['exact_se']))}); "
        f"K = {first['samples']}, n = {first['batch']}",
        "",
        "| estimator | encoder variance (95% CI) | encoder ‖bias‖ (95% CI) | decoder variance | μs per estimate |",
        "|---|---|---|---|---|",
    ]
    for name, row in encoder.iterrows():
        label = f"{name} (biased)" if bool(row["biased"]) else str(name)
        variance = f"{short(row['variance'])} ({short(row['variance_lo'])}, {short(row['variance_hi'])})"
        flag = " *" if bool(row["bias_significant"]) else ""
        bias = f"{short(row['bias'])}{flag} ({short(row['bias_lo'])}, {short(row['bias_hi'])})"
        cost = round(float(row["sec_per_estimate"]) * 1e6)
        lines.append(f"| {label} | {variance} | {bias} | {short(decoder.loc[name, 'variance'])} | {cost} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders written by rpbench run")
    parser.add_argument("-w", "--where", action="append", default=[], help="key=value row filter (repeatable)")
    args = parser.parse_args()
    for path in args.runs:
        run = rpbench.load(path).where(args.where)
        tasks = list(dict.fromkeys(run.results["task"].astype(str)))
        for task in tasks:
            rows = run.with_results(run.results[run.results["task"].astype(str) == task].reset_index(drop=True))
            vae = rows.results[rows.results["group"].isin(["encoder", "decoder"])]
            if vae.empty:
                continue
            print(f"**`{task}`**\n\n{table(rows.with_results(vae.reset_index(drop=True)))}\n")


if __name__ == "__main__":
    pd.set_option("display.width", 200)
    main()
