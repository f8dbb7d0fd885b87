"""The ``rpbench`` command line: ``list``, ``run``, ``train``, ``report``, ``plot``, ``compare``.

A thin layer over the Python API (:mod:`rpbench.api`): each command parses its options, calls the
API and prints.  Bad input of any kind (an unknown name, a value out of range, an unusable path
or device) ends with one line ``error: …`` on stderr naming the problem and the valid choices, and
exit code 2.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from rpbench import api
from rpbench.columns import TARGET_REACHED
from rpbench.errors import UsageError
from rpbench.results import FAILURES_DIR, RESULTS_FILE, write_atomic
from rpbench.runner import parse_task_params
from rpbench.sweep import CellReport, load_plugins
from rpbench.truth import ReferenceReport
from rpbench.views.constants import SHOWN_METRICS
from rpbench.views.loader import Run

app = typer.Typer(
    help="Measure Monte Carlo gradient estimators: variance, bias, MSE and cost, against exact gradients.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(width=None if sys.stdout.isatty() else 220)  # wide enough for intervals in logs

WhereOption = Annotated[
    list[str] | None, typer.Option("--where", "-w", help="Keep rows with key=value (a comma list; repeatable).")
]
PluginOption = Annotated[
    list[str] | None,
    typer.Option("--plugin", help="A .py file or module that registers tasks/estimators (repeatable)."),
]


@app.command("list")
def list_command(
    task: Annotated[str | None, typer.Option("--task", "-t", help="Show one task in full.")] = None,
    plugin: PluginOption = None,
) -> None:
    """Show every task (parameters, defaults, capabilities) and every estimator (parameters, needs)."""
    from rpbench.catalog import estimators_table, task_detail_tables, tasks_table
    from rpbench.registry import ESTIMATORS, TASKS, get_task

    load_plugins(plugin or [])
    if task is not None:
        for table in task_detail_tables(get_task(task), ESTIMATORS):
            console.print(table)
        return
    console.print(tasks_table(TASKS))
    console.print(estimators_table(ESTIMATORS))


@app.command("run")
def run_command(
    task: Annotated[
        str | None, typer.Option("--task", "-t", help="Task family (see `rpbench list`). [default: gaussian]")
    ] = None,
    estimator: Annotated[
        list[str] | None,
        typer.Option(
            "--estimator", "-e", help='"all", a list "score,pathwise", or "score+ma:decay=0.9,0.99" (repeatable).'
        ),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Task parameter key=value; a comma list sweeps (repeatable)."),
    ] = None,
    samples: Annotated[
        str | None,
        typer.Option(
            "--samples",
            "-K",
            help="Independent estimates per cell (K >= 2; a comma list sweeps; the start with --target-rel-ci)."
            " [default: 1000]",
        ),
    ] = None,
    batch: Annotated[
        str | None,
        typer.Option("--batch", "-n", help="Samples inside each estimate (n >= 1; a comma list sweeps). [default: 1]"),
    ] = None,
    target_rel_ci: Annotated[
        float | None,
        typer.Option(
            "--target-rel-ci",
            help="Adaptive K: double each cell's K until its variance CI's (hi-lo)/2/value is below this (all groups).",
        ),
    ] = None,
    max_samples: Annotated[
        int | None,
        typer.Option("--max-samples", help="Adaptive K's cap (needs --target-rel-ci). [default: 100 x K]"),
    ] = None,
    equal_cost: Annotated[
        int | None,
        typer.Option(
            "--equal-cost",
            help="Instead of --batch: each estimator gets the largest n whose evaluations of f per estimate are <= E.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Base seed; each cell derives its own generator from it.")] = 0,
    suite: Annotated[
        Path | None, typer.Option(help="A suite file (tasks/*.toml) instead of --task/--estimator/--param/-K/-n.")
    ] = None,
    resume: Annotated[
        Path | None, typer.Option(help="Finish an interrupted run folder: skip its finished cells, run the rest.")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Run cells in parallel on a local Dask cluster of N processes.")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Run cells on the Dask scheduler tcp://host:port (or auto: a LocalCluster).")
    ] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda or cuda:N.")] = "cpu",
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for run outputs; each run writes a new OUT/<run-id>/. [default: results]"),
    ] = None,
    repeats: Annotated[
        int | None,
        typer.Option(help="Timed values per cell (>= 1); the cost is their median, its CI two of them. [default: 7]"),
    ] = None,
    min_time: Annotated[
        float | None,
        typer.Option(
            "--min-time",
            help="Seconds a timed value lasts at least (a shorter cell repeats inside it; 0: once). [default: 0.05]",
        ),
    ] = None,
    timing_threads: Annotated[
        int | None,
        typer.Option(
            "--timing-threads",
            help="Torch threads while a cell is timed (0: the process's own); one: a core's cost. [default: 1]",
        ),
    ] = None,
    level: Annotated[float, typer.Option(help="Confidence level of every interval, in (0, 1).")] = 0.95,
    max_memory: Annotated[
        str | None,
        typer.Option(
            "--max-memory",
            help="Memory for one chunk of estimates (e.g. 256M, 2G); K is drawn in chunks that fit. [default: 512M]",
        ),
    ] = None,
    metric: Annotated[str, typer.Option(help="Metric the console summary shows.")] = "variance",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary table, no reference progress.")] = False,
    plugin: PluginOption = None,
    cache: Annotated[
        bool, typer.Option("--cache/--no-cache", help="Read and write reference truths in the on-disk cache.")
    ] = True,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            "--cache-dir",
            help="The reference cache's folder. [default: $RPBENCH_CACHE_DIR, else $XDG_CACHE_HOME/rpbench or "
            "~/.cache/rpbench]",
        ),
    ] = None,
) -> None:
    """Draw K independent gradient estimates per cell and write variance, bias, MSE, SNR and cost with CIs."""
    if metric not in SHOWN_METRICS:
        raise UsageError(f"--metric {metric!r} is not a metric; valid choices: {', '.join(SHOWN_METRICS)}")
    with progress_bar() as on_cell:
        run = api.run(
            task=task,
            estimators=estimator,
            params=parse_task_params(param, task or "gaussian") if param else None,
            samples=parse_counts(samples, "--samples", "1000 or 100,1000"),
            batch=parse_counts(batch, "--batch", "1 or 1,2,4,8"),
            seed=seed,
            target_rel_ci=target_rel_ci,
            max_samples=max_samples,
            equal_cost=equal_cost,
            suite=suite,
            device=device,
            out=out if out is not None or resume is not None else Path("results"),
            repeats=repeats,
            min_time=min_time,
            timing_threads=timing_threads,
            level=level,
            max_memory=max_memory,
            plugins=plugin or [],
            workers=workers,
            scheduler=scheduler,
            resume=resume,
            cache=cache,
            cache_dir=cache_dir,
            on_cell=on_cell,
            on_reference=None if quiet else on_cell.reference,
        )
    print_outcome(run, metric, quiet)


def parse_counts(text: str | None, flag: str, example: str) -> int | list[int] | None:
    """``-n 4`` or ``-n 1,2,4,8`` as an integer or a list of them; a :class:`UsageError` otherwise."""
    if text is None:
        return None
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise UsageError(f"{flag} {text!r}: expected an integer or a comma list of integers, e.g. {example}") from None
    return values[0] if len(values) == 1 else values


class RunProgress:
    """The run's transient progress bars: the cells (call it with each :class:`CellReport`, as
    ``on_cell``) and, below them, each reference truth being drawn (:meth:`reference`, as
    ``on_reference``).  Rich draws nothing where stdout is not a terminal."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.cells = progress.add_task("measuring", total=None, what="cells, 0 failed")
        self.references: dict[tuple[str, str], TaskID] = {}

    def __call__(self, report: CellReport) -> None:
        what = f"cells, {report.failed} failed"
        self.progress.update(self.cells, total=report.total, completed=report.done, what=what)

    def reference(self, report: ReferenceReport) -> None:
        """A reference's progress; its bar goes once it is drawn."""
        which = report.task, report.kind
        if which not in self.references:
            what = f"estimate passes, {report.kind}"  # each estimate twice: the mean, then the spread
            self.references[which] = self.progress.add_task(f"reference {report.task}", total=report.total, what=what)
        self.progress.update(self.references[which], completed=report.done, refresh=True)  # chunks take seconds
        if report.done >= report.total:
            self.progress.remove_task(self.references.pop(which))


@contextmanager
def progress_bar() -> Iterator[RunProgress]:
    """Transient rich progress bars, fed by ``rpbench.run``'s ``on_cell`` and ``on_reference`` hooks."""
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[what]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        yield RunProgress(progress)


def print_outcome(run: Run, metric: str, quiet: bool) -> None:
    """The summary tables, what was skipped, where the rows went; exit code 1 if any cell failed."""
    from rpbench.views.summary import summary_tables

    if not quiet:
        for table in summary_tables(run, metric):
            console.print(table)
    skipped = list(run.meta.get("skipped") or [])
    if skipped:
        console.print(
            f"[yellow]skipped {len(skipped)} estimator/configuration pairs that do not apply "
            f"(see {run.path / 'run.json' if run.path else 'run.meta'}), e.g. {skipped[0]}[/]"
        )
    adaptive_line(run)
    console.print(f"wrote {len(run.results)} rows to {run.path / RESULTS_FILE if run.path else 'memory'}")
    failed = run.results[run.results["status"] == "failed"]
    if len(failed):
        for row in failed.to_dict("records"):
            console.print(f"[red]failed: {row['task']} {row['estimator']} group {row['group']}: {row['error']}[/]")
        where = f"; tracebacks in {run.path / FAILURES_DIR}" if run.path else ""
        console.print(
            f"[red]{len(failed)} rows failed (status=failed in the CSV){where}; the rest of the sweep completed[/]"
        )
        raise typer.Exit(1)


def adaptive_line(run: Run) -> None:
    """With adaptive K: how many cells met the target, the K they reached, and which hit the cap."""
    if TARGET_REACHED not in run.results.columns:
        return
    ok = run.results[(run.results["status"] == "ok") & run.results[TARGET_REACHED].notna()]
    if ok.empty:
        return
    cells = ok.groupby("cell_seed", sort=False).agg(reached=(TARGET_REACHED, "all"), samples=("samples", "first"))
    met, short = cells[cells["reached"]], cells[~cells["reached"]]
    span = f"K {int(cells['samples'].min())}–{int(cells['samples'].max())}"
    line = f"adaptive K: {len(met)} of {len(cells)} cells met the target ({span})"
    if len(short):
        first = ok[ok["cell_seed"] == short.index[0]].iloc[0]
        line += f"; {len(short)} stopped at the cap (K={int(first['samples'])}) short of it, e.g. {first['estimator']}"
    console.print(f"[yellow]{line}[/]" if len(short) else line)


@app.command("train")
def train_command(
    task: Annotated[str, typer.Option("--task", "-t", help="A trainable task (the VAEs).")] = "discrete-vae",
    estimator: Annotated[
        list[str] | None, typer.Option("--estimator", "-e", help='As for run: "gumbel,score+loo" (repeatable).')
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Task parameter key=value; a comma list sweeps.")
    ] = None,
    steps: Annotated[int, typer.Option(help="Adam steps per run.")] = 1000,
    eval_every: Annotated[
        int | None, typer.Option("--eval-every", help="Steps between evaluations. [default: steps/10]")
    ] = None,
    seeds: Annotated[str, typer.Option(help="Comma list of seeds (initialisation and minibatch stream).")] = "0",
    lr: Annotated[float, typer.Option(help="Adam's learning rate.")] = 1e-3,
    train_batch: Annotated[
        int | None, typer.Option("--train-batch", help="Images per step (the task's minibatch).")
    ] = None,
    batch: Annotated[int, typer.Option("--batch", "-n", help="Samples per image per step.")] = 1,
    eval_samples: Annotated[
        int, typer.Option("--eval-samples", help="Samples of the importance-weighted bound.")
    ] = 100,
    time_budget: Annotated[
        float | None, typer.Option("--time-budget", help="Stop each run after this many seconds of training.")
    ] = None,
    measure: Annotated[
        int, typer.Option(help="K gradient estimates at every evaluation point, into measure.csv (0: none).")
    ] = 0,
    measure_estimators: Annotated[
        list[str] | None,
        typer.Option("--measure-estimators", help="Estimators measured there (as -e; all). [default: the trained one]"),
    ] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda or cuda:N.")] = "cpu",
    out: Annotated[
        Path | None, typer.Option(help="Each training run set writes OUT/<run-id>/curves.csv. [default: results]")
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(help="Finish an interrupted training run folder: every run continues from its checkpoint."),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Train the runs in parallel on a local Dask cluster of N processes.")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Train the runs on the Dask scheduler tcp://host:port (or auto).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No final table.")] = False,
    plugin: PluginOption = None,
) -> None:
    """Train the model with each estimator and seed; learning curves (held-out ELBO and bound) in curves.csv."""
    run = api.train(
        task=task,
        estimators=estimator,
        params=parse_task_params(param, task) if param else None,
        steps=steps,
        eval_every=eval_every,
        seeds=parse_seeds(seeds),
        lr=lr,
        train_batch=train_batch,
        batch=batch,
        eval_samples=eval_samples,
        time_budget=time_budget,
        measure=measure,
        measure_estimators=measure_estimators,
        device=device,
        out=out if out is not None or resume is not None else Path("results"),
        plugins=plugin or [],
        resume=resume,
        workers=workers,
        scheduler=scheduler,
    )
    if not quiet and (run.results["status"] == "ok").any():
        print(api.report(run, format="markdown"))  # the final held-out ELBO per estimator, over seeds
    console.print(f"wrote {len(run.results)} rows to {run.path / 'curves.csv' if run.path else 'memory'}")
    failed = run.results[run.results["status"] == "failed"]
    for row in failed.to_dict("records"):
        console.print(f"[red]failed: {row['estimator']} seed {row['seed']} at step {row['step']}: {row['error']}[/]")
    if len(failed):
        raise typer.Exit(1)


def parse_seeds(text: str) -> list[int]:
    """``--seeds 0,1,2`` as integers >= 0; a :class:`UsageError` otherwise."""
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise UsageError(f"--seeds {text!r}: expected a comma list of integers >= 0, e.g. 0,1,2") from None
    if min(seeds) < 0:
        raise UsageError(f"--seeds {text!r}: expected a comma list of integers >= 0, e.g. 0,1,2")
    return seeds


@app.command("report")
def report_command(
    run_dir: Annotated[Path, typer.Argument(help="A run folder (or its results.csv / curves.csv).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="markdown, latex or csv.")] = "markdown",
    metric: Annotated[
        str | None,
        typer.Option(
            help="The metric in the cells, or several side by side (variance,snr,sec_per_estimate). "
            "[default: variance; eval_elbo for a training run]"
        ),
    ] = None,
    relative_to: Annotated[
        str | None, typer.Option("--relative-to", help="Show each cell as a ratio to this estimator.")
    ] = None,
    caption: Annotated[str | None, typer.Option(help="Words that lead the caption (LaTeX: a table float).")] = None,
    label: Annotated[str | None, typer.Option(help="LaTeX \\label of the table float (e.g. tab:variance).")] = None,
    best_includes_biased: Annotated[
        bool, typer.Option("--best-includes-biased", help="Let biased rows be marked best.")
    ] = False,
    group: Annotated[str | None, typer.Option(help="Only this parameter group (e.g. mu, encoder).")] = None,
    columns: Annotated[
        str | None, typer.Option(help="Comma-separated keys that form the columns (default: all that vary, and group).")
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")] = None,
    at_seconds: Annotated[
        float | None, typer.Option("--at-seconds", help="Training runs: the last point within this wall-clock.")
    ] = None,
    where: WhereOption = None,
    per: Annotated[
        str | None,
        typer.Option(
            help="Weight the variance by each estimator's cost: evaluations (eval_variance) or seconds "
            "(work_variance), a comparison at equal cost."
        ),
    ] = None,
) -> None:
    """A publication table: estimators × task configurations, each cell the metric with its CI."""
    keys = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    text = api.report(
        run_dir,
        metric,
        group,
        relative_to,
        keys,
        where or [],
        fmt,
        at_seconds,
        caption,
        label,
        best_includes_biased,
        per,
    )
    if output is None:
        print(text)
    else:
        write_output(output, str(text))
        console.print(f"wrote {output}")


@app.command("plot")
def plot_command(
    run_dir: Annotated[Path, typer.Argument(help="A run folder (or its results.csv / curves.csv).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="FILE.png, FILE.pdf or FILE.svg")],
    x: Annotated[
        str | None,
        typer.Option(
            help="The swept parameter on the x axis (sigma, tau, k, batch, samples, ...; step or seconds for "
            "training runs)."
        ),
    ] = None,
    metric: Annotated[
        str | None, typer.Option(help="The metric on the y axis. [default: variance; eval_elbo for a training run]")
    ] = None,
    group: Annotated[str | None, typer.Option(help="Only this parameter group.")] = None,
    cols: Annotated[
        int | None, typer.Option(help="Panels per row (default 3; 4 from 10 panels on; 2 for one-column).")
    ] = None,
    yscale: Annotated[str, typer.Option(help="One y scale for all panels: auto, log, linear or symlog.")] = "auto",
    size: Annotated[
        str,
        typer.Option(
            help="default (3.8 in a column, PNG 120 dpi), two-column (6.75 in wide) or one-column "
            "(3.25 in wide; PNG 300 dpi)."
        ),
    ] = "default",
    where: WhereOption = None,
) -> None:
    """A figure: the metric against a swept parameter, one line per estimator, with CI bands."""
    api.plot(
        run_dir, x=x, metric=metric, group=group, where=where or [], out=output, cols=cols, yscale=yscale, size=size
    )
    console.print(f"wrote {output}")


@app.command("compare")
def compare_command(
    baseline: Annotated[Path, typer.Argument(help="Baseline results.csv or run folder.")],
    new: Annotated[Path, typer.Argument(help="New results.csv or run folder.")],
    metric: Annotated[str, typer.Option(help="Comma-separated metrics to gate on.")] = "variance,bias",
    tolerance: Annotated[float, typer.Option(help="Relative change a metric may make before it counts.")] = 0.1,
    speed_tolerance: Annotated[
        float, typer.Option("--speed-tolerance", help="Relative slow-down of sec_per_estimate allowed (1.0 = 2x).")
    ] = 1.0,
    level: Annotated[float, typer.Option(help="Confidence level of each test.")] = 0.99,
    all_rows: Annotated[bool, typer.Option("--all", help="List every comparison, not only changes.")] = False,
) -> None:
    """Statistical regression gate: exit 0 = no regression, 1 = regression, 2 = unusable input."""
    from rpbench.views.compare_table import changes_table

    result = api.compare(baseline, new, metric, tolerance, speed_tolerance, level)
    console.print(changes_table(result, only_changes=not all_rows))
    regressions, slow = len(result.regressions), len(result.speed_regressions)
    console.print(f"compared {result.matched} rows: {regressions} regressions, {slow} speed regressions")
    if result.failed:
        raise typer.Exit(1)


@app.command("record")
def record_command(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `rpbench run`.")],
    history: Annotated[Path, typer.Option("--history", help="The history file (SQLite; created if missing).")],
) -> None:
    """Add a run to a results history, keyed by its git commit and machine (twice: a no-op)."""
    from rpbench.history.store import record

    run_id, added = record(run_dir, history)
    console.print(f"{'recorded' if added else 'already recorded'}: {run_id} in {history}")


@app.command("history")
def history_command(
    history: Annotated[Path, typer.Argument(help="A history file written by `rpbench record`.")],
    metric: Annotated[str, typer.Option(help="The metric to follow (a metric `rpbench compare` tests).")] = "variance",
    where: Annotated[
        list[str] | None, typer.Option("--where", "-w", help="Keep rows with key=value (a comma list; repeatable).")
    ] = None,
    machine: Annotated[str | None, typer.Option(help="Only this machine (its fingerprint, or a prefix).")] = None,
    tolerance: Annotated[float, typer.Option(help="Relative change a metric may make before it counts.")] = 0.1,
    level: Annotated[float, typer.Option(help="Confidence level of each test.")] = 0.99,
) -> None:
    """A metric across the recorded commits, with its change points (regressions, improvements)."""
    from rpbench.history.changes import SERIES_COLUMNS, history_table
    from rpbench.views.history import history_view

    frame = history_table(history, metric, where or [], machine, tolerance, level)
    keys = [c for c in frame.columns if c not in (*SERIES_COLUMNS, metric, f"{metric}_lo", f"{metric}_hi", "change")]
    console.print(history_view(frame, metric, keys))


@app.command("dashboard")
def dashboard_command(
    history: Annotated[Path, typer.Argument(help="A history file written by `rpbench record`.")],
    out: Annotated[Path, typer.Option("--output", "-o", help="The folder of the static site (created).")],
    metric: Annotated[str, typer.Option(help="The metric to follow (a metric `rpbench compare` tests).")] = "variance",
    machine: Annotated[str | None, typer.Option(help="The machine (default: the latest run's).")] = None,
) -> None:
    """A static, offline web dashboard of a history: a page per task family, change points marked."""
    from rpbench.views.dashboard import write_dashboard

    pages = write_dashboard(history, out, metric, machine)
    console.print(f"wrote {len(pages)} pages to {out} (open {pages[-1]})")


def write_output(path: Path, text: str) -> None:
    """Write a report file atomically; a :class:`UsageError` if the folder is unusable."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text if text.endswith("\n") else text + "\n")
    except OSError as exc:
        raise UsageError(f"--output {path}: cannot write it ({exc.strerror or exc}); choose a writable path") from None


# Typer vendors click in recent releases; reach its exception base through the public API.
ClickException: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning every usage problem into one line and exit code 2."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="rpbench", standalone_mode=False)
        if isinstance(code, int) and code != 0:  # typer.Exit(code), returned in non-standalone mode
            sys.exit(code)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except ClickException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # the help has been shown already
            sys.exit(0)
        message = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
        print(f"error: {message}", file=sys.stderr)
        sys.exit(getattr(exc, "exit_code", 2))
    except (typer.Abort, KeyboardInterrupt):
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
