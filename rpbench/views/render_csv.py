"""A report table as a plain numeric CSV pivot."""

from __future__ import annotations

import pandas as pd

from rpbench.views.report_cells import magnitude, ratio_interval, reference_row
from rpbench.views.report_layout import Grid


def pivot_frame(grid: Grid, metric: str, relative_to: str | None) -> pd.DataFrame:
    """One row per estimator configuration: ``metric[column]`` and its bounds (or its ratio to
    ``relative_to`` with the ratio's bounds, of |bias| for bias), and
    ``bias_significant[column]``; all in the metric's own units (seconds)."""
    out = pd.DataFrame({"estimator": grid.rows, "biased": [grid.biased[r] for r in grid.rows]})
    reference = reference_row(grid, relative_to) if relative_to is not None else None
    for j, column in enumerate(grid.columns):
        where = ";".join(f"{k}={v}" for k, v in zip(grid.keys, column, strict=True) if v)
        suffix = f"[{where}]" if where else ""
        if reference is not None:
            bounded = {r: magnitude(grid, r, j, metric == "bias") for r in grid.rows}
            ratios = [ratio_interval(bounded[r], bounded[reference]) for r in grid.rows]
            out[f"{metric}_ratio{suffix}"] = [r.value for r in ratios]
            out[f"{metric}_ratio_lo{suffix}"] = [r.lo for r in ratios]
            out[f"{metric}_ratio_hi{suffix}"] = [r.hi for r in ratios]
        else:
            out[f"{metric}{suffix}"] = grid.value[j].to_numpy()
            out[f"{metric}_lo{suffix}"] = grid.lo[j].to_numpy()
            out[f"{metric}_hi{suffix}"] = grid.hi[j].to_numpy()
        out[f"bias_significant{suffix}"] = grid.significant[j].to_numpy()
    return out


def render_csv(grid: Grid, metric: str, relative_to: str | None) -> str:
    """The plain pivot of :func:`pivot_frame` as CSV text."""
    return pivot_frame(grid, metric, relative_to).to_csv(index=False)
