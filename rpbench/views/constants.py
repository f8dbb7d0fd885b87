"""What a view can show: the metrics, their direction, the marks and the output formats.

Derived from :mod:`rpbench.columns` (the contract of ``results.csv``), not from
:mod:`rpbench.metrics`, which imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence

from rpbench.columns import CURVE_METRICS as CURVE_METRICS
from rpbench.columns import HIGHER_IS_BETTER as HIGHER_IS_BETTER
from rpbench.columns import METRICS as METRICS_WITH_CI
from rpbench.columns import SHOWN_METRICS as SHOWN_METRICS
from rpbench.errors import UsageError

WITH_CI: frozenset[str] = frozenset(METRICS_WITH_CI)
"""Metrics that have ``<metric>_lo`` / ``<metric>_hi`` columns."""
NO_BEST: frozenset[str] = frozenset({"mean", "eval_elbo_se"})
"""Metrics without a best value (a mean is neither good nor bad, nor is the SE of an evaluation)."""
CURVE_HIGHER_IS_BETTER: frozenset[str] = frozenset({"train_elbo", "eval_elbo", "eval_iwae"})
"""Training metrics where larger is better (bounds on the log-likelihood)."""
BEST_IS_HIGHEST: frozenset[str] = HIGHER_IS_BETTER | CURVE_HIGHER_IS_BETTER
"""Every metric a table shows whose best value is its largest."""
TRAIN_DEFAULT_METRIC = "eval_elbo"
"""What a training run's report and figure show unless asked."""
TRAIN_X: tuple[str, ...] = ("step", "seconds")
"""The x axes of a training run's learning curves."""

COMPARED: tuple[str, ...] = ("variance", "variance_per_coord", "mse", "bias", "snr", "cosine")
"""Metrics ``compare`` accepts; :data:`SPEED` is always compared, separately."""
LOWER_IS_BETTER: tuple[str, ...] = ("variance", "variance_per_coord", "mse")
"""Compared metrics tested as a ratio where smaller is better."""
SPEED = "sec_per_estimate"
"""The timing ``compare`` gates on with its own tolerance (as :data:`RELATIVE_SPEED` where both runs have it)."""
RELATIVE_SPEED = "relative_cost"
"""``sec_per_estimate`` in units of the machine-speed reference timed beside it (:mod:`rpbench.timing`)."""
SPEED_METRICS = frozenset({SPEED, RELATIVE_SPEED})
"""The metrics a speed change is reported under."""

REPORT_FORMATS: tuple[str, ...] = ("markdown", "latex", "csv")
"""Formats of :func:`rpbench.views.report.report_text`."""
ROUND_OFF = 1e-12
"""Relative size under which a squared quantity (a variance, × the squared gradient scale) is
floating-point round-off: shown as 0 by the tables, counted as zero by ``compare``."""
MISSING = "–"
"""What a table shows where there is no value."""
DAGGER_NOTE = "† biased by construction"
STAR_NOTE = "* bias beyond 4 SE"
RUN_KEY_NAMES: dict[str, str] = {"samples": "K", "batch": "n", "start_samples": "K0"}
"""Short names of the budget keys in captions."""


def check_choice(value: str, choices: Sequence[str], what: str) -> None:
    """A :class:`UsageError` listing the choices unless ``value`` is one of them."""
    if value not in choices:
        raise UsageError(f"unknown {what} {value!r}; valid choices: {', '.join(choices)}")
