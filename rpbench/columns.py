"""The columns of ``results.csv`` and the role each plays, as a run writes them into ``run.json``.

A run knows its columns before it measures anything (every task and estimator parameter of its
plan), so it writes the header once, appends each finished cell's rows, and records in
``run.json`` under ``"columns"`` one entry per column::

    {"name": "sigma", "role": "key", "kind": "task", "type": "float"}

Roles: ``key`` (the configuration that identifies a row; ``kind`` says which part: ``identity``,
``run``, ``task`` or ``estimator``), ``metric`` (a measured value), ``ci`` (a bound of a metric's
interval, ``of`` names the metric), ``timing`` (depends on the machine's speed), ``outcome``
(how the cell went: status, error, where the truth came from, …).  Types: ``str``, ``int``,
``float``, ``bool``.  The views read roles and types from there and never guess them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

IDENTITY: tuple[str, ...] = ("task", "estimator", "biased", "group")
"""What is measured: the task family, the estimator, whether it is biased by construction, the group."""
RUN_KEYS: tuple[str, ...] = ("samples", "batch", "seed", "device")
"""The budget and where it ran: K, n, the run's seed, the device."""
ADAPTIVE_KEY = "start_samples"
"""Adaptive K (``--target-rel-ci``): the K a cell started at, a run key (its seed derives from it),
while ``samples`` holds the K reached, an outcome."""
TARGET_REACHED = "target_reached"
"""Adaptive K: whether every group's variance interval met ``--target-rel-ci`` before ``--max-samples``."""
CELL_ID = "cell_seed"
"""The seed of the cell's generator: also its identity when a run is resumed."""

OUTCOME: tuple[str, ...] = ("status", "error", "truth", "exact_se")
"""How the cell went: ``ok``/``failed``, the error, the kind of truth and its SE (then
``setup_seconds`` and ``chunk``, the estimates per chunk, the largest one with adaptive K)."""

METRICS: tuple[str, ...] = (
    "mean",
    "bias",
    "variance",
    "variance_per_coord",
    "mse",
    "snr",
    "cosine",
    "sec_per_estimate",
    "work_variance",
    "bias_debiased",
    "relative_cost",
    "eval_variance",
)
"""Metrics with a ``_lo``/``_hi`` interval (their CSV order: :func:`metric_columns`)."""
COUNTS: tuple[str, ...] = ("n_coords", "evaluations")
"""Integer columns of an ``ok`` row: the coordinates of the group; the evaluations of f per estimate
(:meth:`rpbench.estimators.base.Estimator.evaluations`, the unit of ``eval_variance``)."""
FLAGS: tuple[str, ...] = ("bias_significant", "tail_warning")
"""Boolean columns of an ``ok`` row: the bias is beyond 4 SE; the tails are too heavy for K
(:func:`rpbench.metrics.tail_unreliable`)."""
SHOWN_METRICS: tuple[str, ...] = (
    "variance",
    "variance_per_coord",
    "mse",
    "bias",
    "bias_debiased",
    "mean",
    "snr",
    "cosine",
    "sec_per_estimate",
    "work_variance",
    "eval_variance",
    "relative_cost",
    "kurtosis",
)
"""Metrics a summary, a report table or a plot can show (the choices of ``rpbench run --metric``)."""
HIGHER_IS_BETTER: frozenset[str] = frozenset({"snr", "cosine"})
"""Metrics where larger is better (for the rest smaller is better; for bias, smaller in absolute value)."""
TIMING: frozenset[str] = frozenset(
    {"setup_seconds", "sec_per_estimate", "sec_per_estimate_min", "work_variance", "relative_cost"}
)
"""Metrics (with their bounds) that depend on the machine's speed."""
TIMING_CONDITIONS: tuple[tuple[str, str], ...] = (
    ("timing_loops", "int"),
    ("reference_seconds", "float"),
    ("load_average", "float"),
    ("torch_threads", "int"),
    ("cpus", "int"),
    ("parallel_cells", "int"),
)
"""What each cell's timing was measured with (role ``timing``, after ``chunk``): the calls inside each
timed value (:func:`rpbench.timing.autorange`), the median seconds of the machine-speed reference
(:class:`rpbench.timing.Reference`), the 1-minute load average, torch's intra-op threads, the CPUs
the process may use, and the cells the run measured side by side (1: alone; N: N Dask workers)."""


def metric_columns() -> tuple[str, ...]:
    """The measured columns of an ``ok`` row, in CSV order (``rpbench.metrics.summarize``'s keys).

    The columns added later (``bias_debiased`` and its bounds, ``tail_warning``, then
    ``sec_per_estimate_min`` and ``relative_cost`` with its bounds, then ``evaluations`` and
    ``eval_variance`` with its bounds) come after ``kurtosis``, so every column of an older run
    keeps its place among the metric columns.
    """

    def with_ci(*names: str) -> list[str]:
        return [f"{metric}{suffix}" for metric in names for suffix in ("", "_lo", "_hi")]

    mean, bias, debiased, relative = ("mean",), ("bias",), ("bias_debiased",), ("relative_cost",)
    per_evaluation = ("eval_variance",)
    rest = [m for m in METRICS if m not in {*mean, *bias, *debiased, *relative, *per_evaluation}]
    return (
        "n_coords",
        *with_ci(*mean),
        "exact",
        *with_ci(*bias),
        "bias_significant",
        *with_ci(*rest),
        "kurtosis",
        *with_ci(*debiased),
        "tail_warning",
        "sec_per_estimate_min",
        *with_ci(*relative),
        "evaluations",
        *with_ci(*per_evaluation),
    )


RESERVED: frozenset[str] = frozenset(
    {*IDENTITY, *RUN_KEYS, ADAPTIVE_KEY, CELL_ID, *OUTCOME, "setup_seconds", "chunk", TARGET_REACHED}
    | {name for name, _ in TIMING_CONDITIONS}
    | {*metric_columns(), "coord"}
)
"""Names no task or estimator parameter may take: they are columns of every row already."""


@dataclass(frozen=True)
class Column:
    """One column of ``results.csv``: its name, role, part of the key (for keys) and type."""

    name: str
    role: str
    type: str
    kind: str | None = None
    of: str | None = None

    def to_json(self) -> dict[str, str]:
        """The entry written in ``run.json`` (unset fields left out)."""
        return {k: v for k, v in asdict(self).items() if v is not None}


def _typed(kind: type) -> str:
    return {bool: "bool", int: "int", float: "float"}.get(kind, "str")


_OUTCOME_TYPES = {"status": "str", "error": "str", "truth": "str", "exact_se": "float"}


def result_columns(
    task_params: Iterable[tuple[str, type]], estimator_params: Iterable[tuple[str, type]], adaptive: bool = False
) -> list[Column]:
    """Every column of a run's ``results.csv``, in order, for its task and estimator parameters.

    ``adaptive`` (a run with adaptive K): ``samples`` is the K reached, an outcome, followed by
    the key :data:`ADAPTIVE_KEY` (the starting K), and :data:`TARGET_REACHED` follows ``chunk``.

    Parameters come as ``(name, type)`` pairs in first-seen order (a name seen twice keeps its
    first place).  A name that is both a task and an estimator parameter, or a run column, would
    make two columns of one name: a ``ValueError`` (the registry refuses such parameters first).
    """
    tasks, estimators = dict(task_params), dict(estimator_params)
    clash = sorted((set(tasks) & set(estimators)) | ((set(tasks) | set(estimators)) & RESERVED))
    if clash:
        raise ValueError(f"parameter name(s) {', '.join(clash)} would name two columns of results.csv")
    columns = [Column(name, "key", "bool" if name == "biased" else "str", "identity") for name in IDENTITY]
    columns += [Column(name, "key", "str" if name == "device" else "int", "run") for name in RUN_KEYS]
    if adaptive:
        at = len(IDENTITY)
        columns[at : at + 1] = [Column("samples", "outcome", "int"), Column(ADAPTIVE_KEY, "key", "int", "run")]
    columns += [Column(n, "key", _typed(t), "task") for n, t in tasks.items()]
    columns += [Column(n, "key", _typed(t), "estimator") for n, t in estimators.items()]
    columns.append(Column(CELL_ID, "outcome", "int"))
    columns += [Column(name, "outcome", _OUTCOME_TYPES[name]) for name in OUTCOME]
    columns.append(Column("setup_seconds", "timing", "float"))
    columns.append(Column("chunk", "outcome", "int"))
    if adaptive:
        columns.append(Column(TARGET_REACHED, "outcome", "bool"))
    columns += [Column(name, "timing", kind) for name, kind in TIMING_CONDITIONS]
    for name in metric_columns():
        base, _, end = name.rpartition("_")
        if end in ("lo", "hi") and base in METRICS:
            columns.append(Column(name, "timing" if base in TIMING else "ci", "float", of=base))
        elif name in COUNTS:
            columns.append(Column(name, "outcome", "int"))
        elif name in FLAGS:
            columns.append(Column(name, "outcome", "bool"))
        else:
            columns.append(Column(name, "timing" if name in TIMING else "metric", "float"))
    return columns


def columns_from_json(entries: Sequence[dict[str, str]]) -> list[Column]:
    """The columns recorded in ``run.json``; a ``ValueError`` where an entry is malformed."""
    columns = []
    for entry in entries:
        if not isinstance(entry, dict) or not {"name", "role", "type"} <= set(entry):
            raise ValueError(f"column entry {entry!r} lacks name, role or type")
        columns.append(Column(**{k: entry[k] for k in ("name", "role", "type", "kind", "of") if k in entry}))
    return columns


CURVE_RUN_KEYS: tuple[str, ...] = ("seed", "device", "batch", "lr", "train_steps", "eval_samples")
"""A training run's settings: its seed (initialisation and minibatch stream), device, n samples per
image, Adam's learning rate, planned steps (`--steps`), samples of the importance-weighted bound (images per
step are the task's ``minibatch``)."""
CURVE_METRICS: tuple[str, ...] = ("train_elbo", "eval_elbo", "eval_elbo_se", "eval_iwae")
"""Measured at each evaluation point of a training run (``curves.csv``), in CSV order."""


def curve_columns(
    task_params: Iterable[tuple[str, type]], estimator_params: Iterable[tuple[str, type]]
) -> list[Column]:
    """Every column of a training run's ``curves.csv``, in order (one row per evaluation point).

    Keys: the identity (``task``, ``estimator``, ``biased``), the run's settings
    (:data:`CURVE_RUN_KEYS`), the task and estimator parameters, and ``step`` (kind ``step``);
    then ``run_seed`` (the run's identity on resume), ``seconds`` (training wall-clock so far,
    evaluation excluded: timing), the metrics (:data:`CURVE_METRICS`), ``status`` and ``error``.
    """
    tasks, estimators = dict(task_params), dict(estimator_params)
    reserved = {*IDENTITY, *CURVE_RUN_KEYS, "step", "run_seed", "seconds", *CURVE_METRICS, "status", "error"}
    clash = sorted((set(tasks) & set(estimators)) | ((set(tasks) | set(estimators)) & reserved))
    if clash:
        raise ValueError(f"parameter name(s) {', '.join(clash)} would name two columns of curves.csv")
    types = {"seed": "int", "device": "str", "batch": "int", "lr": "float", "train_steps": "int", "eval_samples": "int"}
    columns = [Column(name, "key", "bool" if name == "biased" else "str", "identity") for name in IDENTITY[:3]]
    columns += [Column(name, "key", types[name], "run") for name in CURVE_RUN_KEYS]
    columns += [Column(n, "key", _typed(t), "task") for n, t in tasks.items()]
    columns += [Column(n, "key", _typed(t), "estimator") for n, t in estimators.items()]
    columns.append(Column("step", "key", "int", "step"))
    columns.append(Column("run_seed", "outcome", "int"))
    columns.append(Column("seconds", "timing", "float"))
    columns += [Column(name, "metric", "float") for name in CURVE_METRICS]
    columns += [Column("status", "outcome", "str"), Column("error", "outcome", "str")]
    return columns


MEASURE_FILE = "measure.csv"
"""A training run's measurements along its trajectories (``rpbench train --measure K``), beside ``curves.csv``."""
MEASURE_COLUMNS_KEY = "measure_columns"
"""Where a training run's ``run.json`` records the columns of its ``measure.csv`` (its ``"columns"`` are
``curves.csv``'s)."""
TRAJECTORY_KEYS: tuple[str, ...] = ("trained_with", "step")
"""What places a measurement on a trajectory: the training estimator (its ``-e`` label, e.g.
``gumbel:tau=1.0``) and the training step at which the state was measured."""


def measure_columns(
    task_params: Iterable[tuple[str, type]], estimator_params: Iterable[tuple[str, type]]
) -> list[Column]:
    """Every column of a training run's ``measure.csv``, in order: ``results.csv``'s
    (:func:`result_columns`, ``seed`` included) with the trajectory keys after the run keys, and
    last ``run_seed``, the training run's identity (as in ``curves.csv``).

    ``trained_with`` (str, kind ``trajectory``) and ``step`` (int, kind ``step``, as in
    ``curves.csv``) are keys: one trajectory's state at one step, measured with each estimator of
    the row's ``estimator`` columns.  A parameter named like one of them is a ``ValueError``.
    """
    tasks, estimators = dict(task_params), dict(estimator_params)
    clash = sorted((set(tasks) | set(estimators)) & {*TRAJECTORY_KEYS, "run_seed"})
    if clash:
        raise ValueError(f"parameter name(s) {', '.join(clash)} would name two columns of {MEASURE_FILE}")
    columns = result_columns(tasks.items(), estimators.items())
    at = len(IDENTITY) + len(RUN_KEYS)
    trajectory = [Column("trained_with", "key", "str", "trajectory"), Column("step", "key", "int", "step")]
    return [*columns[:at], *trajectory, *columns[at:], Column("run_seed", "outcome", "int")]
