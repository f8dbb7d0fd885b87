"""The Python API: ``rpbench.run``, ``load``, ``report``, ``plot``, ``compare``.

The command line calls exactly these.  Every keyword of :func:`run` is an option of ``rpbench
run`` (``estimators`` is ``--estimator``, ``params`` is ``--param``, ``plugins`` is
``--plugin``); bad arguments raise :class:`rpbench.UsageError` with the one-line message the CLI
prints.  Nothing here prints.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rpbench.errors import UsageError
from rpbench.options import parse_memory
from rpbench.sweep import OnCell, Resolved, execute, resolve_resumed, resolve_suite, single_entry
from rpbench.tables import write_atomic
from rpbench.truth import OnReference
from rpbench.truth_cache import cache_folder
from rpbench.views.loader import Run, load_run, run_from_text

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from rpbench.views.compare import Comparison

ParamValue = str | int | float
Params = Mapping[str, ParamValue | Sequence[ParamValue]]


def run(
    task: str | None = None,
    estimators: str | Sequence[str] | None = None,
    params: Params | None = None,
    samples: int | Sequence[int] | None = None,
    batch: int | Sequence[int] | None = None,
    seed: int = 0,
    *,
    target_rel_ci: float | None = None,
    max_samples: int | None = None,
    equal_cost: int | None = None,
    suite: str | Path | Mapping[str, object] | None = None,
    device: str = "cpu",
    out: str | Path | None = None,
    repeats: int | None = None,
    min_time: float | None = None,
    timing_threads: int | None = None,
    level: float = 0.95,
    max_memory: str | int | None = None,
    plugins: Sequence[str] = (),
    workers: int | None = None,
    scheduler: str | None = None,
    resume: str | Path | None = None,
    cache: bool = True,
    cache_dir: str | Path | None = None,
    on_cell: OnCell | None = None,
    on_reference: OnReference | None = None,
) -> Run:
    """Measure every (task configuration, estimator configuration, seed) cell; the run's results.

    ``task``, ``estimators`` (``"all"``, ``"score,pathwise"``, ``"score+ma:decay=0.9,0.99"`` or a
    list of such), ``params`` (``{"sigma": [1.0, 2.0], "fn": "cos"}``: a list sweeps), ``samples``
    (K, default 1000), ``batch`` (n, default 1), ``seed``, ``repeats`` (timed values per cell,
    default 7), ``min_time`` (seconds each value lasts at least, default 0.05) and
    ``timing_threads`` (torch threads while timing, default 1; 0: the process's) define one entry;
    ``samples`` and ``batch`` may be lists (``batch=[1, 2, 4, 8]``: one cell per
    value, each with the seed a single value would give it).  ``target_rel_ci`` (adaptive K) doubles
    each cell's K from ``samples`` until its variance interval's relative half-width ``(hi − lo) / 2 /
    value`` is below it in every group, or until ``max_samples`` (default 100 × ``samples``); the
    rows' ``samples`` is then the K reached.  ``equal_cost`` (instead of ``batch``) gives each
    estimator the largest n whose evaluations of f per estimate are at most it (the rows' ``batch``
    and ``evaluations`` say what each got).  ``suite`` (a TOML file, or a mapping of its shape)
    defines several entries instead.
    ``out`` is the folder under which a new run folder is written (``None``: nothing is written;
    the results stay in memory).  ``resume`` finishes an interrupted run folder as it was planned.
    ``workers``/``scheduler`` run cells on Dask.  ``on_cell`` is called with a
    :class:`rpbench.sweep.CellReport` after every finished cell (a progress bar, MLflow, W&B).
    Reference truths are kept on disk between runs (:mod:`rpbench.truth_cache`) in ``cache_dir``
    (default: ``$RPBENCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/rpbench`` or ``~/.cache/rpbench``);
    ``cache=False`` neither reads nor writes it.  ``on_reference`` is called with a
    :class:`rpbench.truth.ReferenceReport` as a reference is drawn (they can take minutes).
    """
    if not 0.0 < level < 1.0:
        raise UsageError(f"--level {level}: a confidence level lies in (0, 1), e.g. 0.95")
    if workers is not None and workers < 1:
        raise UsageError(f"--workers {workers}: need at least 1 worker process")
    if not cache and cache_dir is not None:
        raise UsageError(f"--no-cache reads and writes no reference cache; drop --cache-dir {cache_dir}")
    given = {
        "--task": task,
        "--estimator": estimators,
        "--param": params,
        "--samples": samples,
        "--batch": batch,
        "--repeats": repeats,
        "--min-time": min_time,
        "--timing-threads": timing_threads,
        "--target-rel-ci": target_rel_ci,
        "--max-samples": max_samples,
        "--equal-cost": equal_cost,
    }
    if resume is not None:
        if any(value is not None for value in (*given.values(), suite, max_memory, out)):
            raise UsageError(f"--resume {resume} continues that run as it was planned; drop the other run options")
        resolved = resolve_resumed(Path(resume))
        resolved.reference_cache = cache_folder(cache_dir) if cache else None
        execute(resolved, None, Path(resume), workers, scheduler, on_cell, on_reference)
        return load_run(Path(resume))
    memory = parse_memory(max_memory) if max_memory is not None else None
    if suite is not None:
        extra = [flag for flag, value in given.items() if value is not None]
        if extra:
            raise UsageError(f"--suite {suite} defines tasks, estimators and budgets; drop {', '.join(extra)}")
        entries, label, where = resolve_suite(suite)
    else:
        lists = _estimator_list(estimators), _param_lists(params)
        entry = single_entry(
            task,
            *lists,
            samples,
            batch,
            seed,
            repeats,
            target_rel_ci,
            max_samples,
            min_time,
            timing_threads,
            equal_cost,
        )
        entries, label, where = [entry], entry.task, None
    folder = cache_folder(cache_dir) if cache else None
    resolved = Resolved(entries, label, where, device, level, plugins=list(plugins), reference_cache=folder)
    if memory is not None:
        resolved.max_memory = memory
    outcome = execute(resolved, None if out is None else Path(out), None, workers, scheduler, on_cell, on_reference)
    if outcome.path is not None:
        return load_run(outcome.path)
    return run_from_text(outcome.results_text or "", outcome.coords_text, outcome.meta, source="<memory>")


def train(
    task: str = "discrete-vae",
    estimators: str | Sequence[str] | None = None,
    params: Params | None = None,
    steps: int = 1000,
    eval_every: int | None = None,
    seeds: Sequence[int] = (0,),
    *,
    lr: float = 1e-3,
    train_batch: int | None = None,
    batch: int = 1,
    eval_samples: int = 100,
    time_budget: float | None = None,
    measure: int = 0,
    measure_estimators: str | Sequence[str] | None = None,
    device: str = "cpu",
    out: str | Path | None = None,
    plugins: Sequence[str] = (),
    on_point: Callable[[dict[str, object]], None] | None = None,
    resume: str | Path | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
) -> Run:
    """Train the task's model with each estimator configuration and seed; its learning curves.

    Every keyword is an option of ``rpbench train``.  ``seeds`` are the runs' model seeds (the
    initialisation and the minibatch stream); ``train_batch`` images per step (the task's
    ``minibatch``), ``batch`` samples per image; evaluation every ``eval_every`` steps (default:
    10 points) with an ``eval_samples``-sample importance-weighted bound; ``time_budget`` stops
    each run after that much training wall-clock.  ``measure`` K > 0 draws K estimates of the
    training estimator (or of each of ``measure_estimators``, ``"all"``) at every evaluation point
    into ``measure.csv`` (``rpbench.load(RUN_DIR / "measure.csv")``).  ``out=None`` writes nothing.  The returned
    :class:`Run` holds ``curves.csv``'s rows; ``on_point`` gets each row as it is measured.
    ``resume`` finishes an interrupted training run folder as it was planned, from its checkpoints.
    ``workers``/``scheduler`` train the runs in parallel on Dask, as for :func:`run`.
    """
    from rpbench.training.loop import Schedule
    from rpbench.training.runs import TrainPlan
    from rpbench.training.runs import train as run_training

    if resume is not None:
        given = locals()
        changed = [name for name, default in _TRAIN_DEFAULTS.items() if _as_list(given[name]) != _as_list(default)]
        if changed:
            flag = changed[0].replace("_", "-")
            raise UsageError(f"--resume {resume} continues that training run as it was planned; drop --{flag}")
        outcome = run_training(None, None, on_point, Path(resume), workers, scheduler)
        return _with_final_table(outcome.meta, Path(resume))

    lists = _param_lists(params)
    if train_batch is not None:
        if "minibatch" in lists:
            raise UsageError("--train-batch sets the task's minibatch; drop --param minibatch")
        lists["minibatch"] = [str(train_batch)]
    every = eval_every if eval_every is not None else max(1, steps // 10)
    schedule = Schedule(steps, every, lr, eval_samples, math.inf if time_budget is None else time_budget)
    estimator_specs = _estimator_list(estimators) or ["all"]
    measured = _estimator_list(measure_estimators) or []
    request = TrainPlan(
        task, lists, estimator_specs, list(seeds), batch, schedule, device, list(plugins), measure, measured
    )
    outcome = run_training(request, None if out is None else Path(out), on_point, None, workers, scheduler)
    if outcome.path is None:
        return run_from_text(outcome.curves_text or "", None, outcome.meta, source="<memory>")
    return _with_final_table(outcome.meta, outcome.path)


def _with_final_table(meta: dict[str, object], run_dir: Path) -> Run:
    """The training run folder's curves as a :class:`Run`, with its ``final.csv`` written beside them."""
    from rpbench.training.runs import CURVES_FILE, FINAL_FILE
    from rpbench.views.final import final_table

    curves = run_dir / CURVES_FILE
    run = run_from_text(curves.read_text(encoding="utf-8"), None, meta, str(curves), run_dir)
    write_atomic(run_dir / FINAL_FILE, final_table(run).to_csv(index=False))
    return run


_NOT_PLANNING = ("on_point", "resume", "workers", "scheduler")
_TRAIN_DEFAULTS: dict[str, object] = {
    name: parameter.default
    for name, parameter in inspect.signature(train).parameters.items()
    if name not in _NOT_PLANNING
}
"""``train``'s planning options and their defaults: with ``resume`` they come from the run folder."""


def _as_list(value: object) -> object:
    return list(value) if isinstance(value, list | tuple) else value


def _estimator_list(estimators: str | Sequence[str] | None) -> list[str] | None:
    if estimators is None:
        return None
    if isinstance(estimators, str):
        return [estimators]
    if not estimators:
        raise UsageError("--estimator: no estimator given; give 'all' or names such as 'score,pathwise'")
    if not all(isinstance(e, str) for e in estimators):
        raise UsageError(f"--estimator {estimators!r}: give estimator specs as strings, e.g. 'score,pathwise'")
    return list(estimators)


def _param_lists(params: Params | None) -> dict[str, list[str]]:
    """``{"sigma": [1, 2], "fn": "cos"}`` as the text lists ``--param`` gives (a list sweeps)."""
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise UsageError(f"--param {params!r}: give a mapping such as {{'sigma': [1.0, 2.0], 'fn': 'cos'}}")
    lists: dict[str, list[str]] = {}
    for key, value in params.items():
        values = list(value) if isinstance(value, list | tuple) else [value]
        if not values:
            raise UsageError(f"--param {key}: empty list; give at least one value")
        bad = [v for v in values if isinstance(v, bool) or not isinstance(v, str | int | float)]
        if bad:
            raise UsageError(f"--param {key}={bad[0]!r}: expected a number or a string (or a list of them)")
        lists[str(key)] = [str(v) for v in values]
    return lists


def load(path: str | Path) -> Run:
    """A run folder (or its ``results.csv``) as a :class:`Run`, checked as it is read."""
    return load_run(path)


def _as_run(run: Run | str | Path) -> Run:
    return run if isinstance(run, Run) else load_run(run)


def report(
    run: Run | str | Path,
    metric: str | Sequence[str] | None = None,
    group: str | None = None,
    relative_to: str | None = None,
    columns: Sequence[str] | None = None,
    where: Sequence[str] = (),
    format: str | None = None,  # the CLI's --format
    at_seconds: float | None = None,
    caption: str | None = None,
    label: str | None = None,
    best_includes_biased: bool = False,
    per: str | None = None,
) -> pd.DataFrame | str:
    """The publication table of ``metric``: a DataFrame, or with ``format`` (markdown, latex, csv) its text.

    ``metric`` defaults to ``variance`` for a measurement run and to ``eval_elbo`` for a training
    run, whose table is the final point of each run averaged over seeds (``at_seconds``: the last
    point within that much training wall-clock instead).  With ``format``, several metrics
    (``"variance,snr,sec_per_estimate"`` or a list) share one table; ``caption`` and ``label``
    make a LaTeX ``table`` float; ``best_includes_biased`` lets biased rows be marked best.
    ``per`` (``"evaluations"`` or ``"seconds"``) weights the variance by each estimator's cost
    (``eval_variance``, ``work_variance``): a comparison at equal cost.
    """
    from rpbench.views.report import metric_list, per_cost, report_frame, report_text

    selected = _as_run(run).where(list(where))
    if per is not None:
        metric = per_cost(metric_list(selected, metric), per)
    keys = list(columns) if columns is not None else None
    options = {"relative_to": relative_to, "group": group, "columns": keys, "at_seconds": at_seconds}
    if format is None:
        metrics = metric_list(selected, metric)
        if len(metrics) > 1:
            raise UsageError("metric: a DataFrame holds one metric; give format= for a table of several")
        return report_frame(selected, metric=metrics[0], **options)  # type: ignore[arg-type]
    text_options = {"caption": caption, "label": label, "best_includes_biased": best_includes_biased}
    return report_text(selected, metric=metric, fmt=format, **options, **text_options)  # type: ignore[arg-type]


def plot(
    run: Run | str | Path,
    x: str | None = None,
    metric: str | None = None,
    group: str | None = None,
    where: Sequence[str] = (),
    out: str | Path | None = None,
    cols: int | None = None,
    yscale: str = "auto",
    size: str = "default",
) -> Figure:
    """The metric against a swept parameter, one line per estimator, with CI bands (saved to ``out`` if given).

    Defaults: ``sigma`` and ``variance`` for a measurement run; ``step`` and ``eval_elbo`` (learning
    curves, bands over seeds) for a training run.  ``cols`` panels per row, one ``yscale`` (auto,
    log, linear, symlog) for all panels, ``size`` a preset (default, two-column, one-column); ``out``
    a .png, .pdf or .svg, checked before anything is drawn or written.
    """
    from rpbench.views.plot import check_options, figure_format, plot_figure, save_figure

    check_options(cols, yscale, size)
    if out is not None:
        figure_format(Path(out))
    figure = plot_figure(
        _as_run(run).where(list(where)), x=x, metric=metric, group=group, cols=cols, yscale=yscale, size=size
    )
    if out is not None:
        save_figure(figure, Path(out))
    return figure


def compare(
    baseline: Run | str | Path,
    new: Run | str | Path,
    metrics: str | Sequence[str] = ("variance", "bias"),
    tolerance: float = 0.1,
    speed_tolerance: float = 1.0,
    level: float = 0.99,
) -> Comparison:
    """The statistical regression gate: ``.table`` (a DataFrame of every comparison) and ``.failed``."""
    from rpbench.views.compare import compare_runs

    return compare_runs(_as_run(baseline), _as_run(new), metrics, tolerance, speed_tolerance, level)
