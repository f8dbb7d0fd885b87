"""The ``rpbench`` command line: ``list`` and ``run``.

Bad input of any kind (an unknown name, a value out of range, an unusable path or device) ends
with one line ``error: …`` on stderr naming the problem and the valid choices, and exit code 2.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from rpbench.engine import DEFAULT_MAX_MEMORY
from rpbench.errors import UsageError
from rpbench.options import parse_memory, resolve_device
from rpbench.params import parse_assignment
from rpbench.registry import ESTIMATORS, TASKS, get_task, load_builtins, load_plugin
from rpbench.results import META_FILE, RESULTS_FILE, RunWriter, create_run_dir, run_metadata, write_atomic
from rpbench.runner import cell_seed_of, execute, parse_estimators, parse_task_params, plan, plan_estimator_params
from rpbench.suite import Entry, load_suite
from rpbench.summary import SUMMARY_METRICS, estimators_table, summary_tables, task_detail_tables, tasks_table

app = typer.Typer(
    help="Measure Monte Carlo gradient estimators: variance, bias, MSE and cost, against exact gradients.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(width=None if sys.stdout.isatty() else 140)

WhereOption = Annotated[
    list[str] | None, typer.Option("--where", "-w", help="Keep rows with key=value (a comma list; repeatable).")
]
PluginOption = Annotated[
    list[str] | None,
    typer.Option("--plugin", help="A .py file or module that registers tasks/estimators (repeatable)."),
]


def load_plugins(plugins: list[str] | None) -> None:
    """Register the built-ins and every ``--plugin``."""
    load_builtins()
    for plugin in plugins or []:
        load_plugin(plugin)


@app.command("list")
def list_command(
    task: Annotated[str | None, typer.Option("--task", "-t", help="Show one task in full.")] = None,
    plugin: PluginOption = None,
) -> None:
    """Show every task (parameters, defaults, capabilities) and every estimator (parameters, needs)."""
    load_plugins(plugin)
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
        int | None, typer.Option("--samples", "-K", help="Independent estimates per cell (K >= 2). [default: 1000]")
    ] = None,
    batch: Annotated[
        int | None, typer.Option("--batch", "-n", help="Samples inside each estimate (n >= 1). [default: 1]")
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
    out: Annotated[Path, typer.Option(help="Folder for run outputs; each run writes a new OUT/<run-id>/.")] = Path(
        "results"
    ),
    repeats: Annotated[
        int | None, typer.Option(help="Timed repeats of each cell (>= 1), for the cost and its CI. [default: 3]")
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
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary table.")] = False,
    plugin: PluginOption = None,
) -> None:
    """Draw K independent gradient estimates per cell and write variance, bias, MSE, SNR and cost with CIs."""
    if not 0.0 < level < 1.0:
        raise UsageError(f"--level {level}: a confidence level lies in (0, 1), e.g. 0.95")
    if metric not in SUMMARY_METRICS:
        raise UsageError(f"--metric {metric!r} is not a metric; valid choices: {', '.join(SUMMARY_METRICS)}")
    load_plugins(plugin)
    if workers is not None and workers < 1:
        raise UsageError(f"--workers {workers}: need at least 1 worker process")
    if resume is not None:
        cell_flags = (task, estimator, param, samples, batch, repeats, suite, max_memory)
        if any(cell_flags):
            raise UsageError(f"--resume {resume} continues that run as it was planned; drop the other run options")
        saved = read_run_options(resume)
        entries, label = [Entry(**entry) for entry in saved["entries"]], ""
        device, level = str(saved["device"]), float(saved["level"])
        memory = parse_memory(saved.get("max_memory", DEFAULT_MAX_MEMORY))
        plugin = list(saved.get("plugin", []))  # the workers load them too
        load_plugins(plugin)
    elif suite is not None:
        given = [
            flag
            for flag, value in (
                ("--task", task),
                ("--estimator", estimator),
                ("--param", param),
                ("--samples", samples),
                ("--batch", batch),
                ("--repeats", repeats),
            )
            if value
        ]
        if given:
            raise UsageError(f"--suite {suite} defines tasks, estimators and budgets; drop {', '.join(given)}")
        loaded = load_suite(suite)
        entries, label = loaded.entries, loaded.name
    else:
        entry = Entry(
            task=task or "gaussian",
            params=parse_task_params(param or [], task or "gaussian"),
            estimators=estimator or ["all"],
            samples=1000 if samples is None else samples,
            batch=1 if batch is None else batch,
            seeds=[seed],
            repeats=3 if repeats is None else repeats,
        )
        check_budget(entry)
        entries, label = [entry], entry.task
    if resume is None:
        memory = DEFAULT_MAX_MEMORY if max_memory is None else parse_memory(max_memory)
    torch_device = resolve_device(device)
    plans = []
    for i, entry in enumerate(entries, 1):
        try:
            requests = parse_estimators(entry.estimators)
            plans.append((entry, plan(entry.task, entry.params, requests, entry.batch, torch_device)))
        except UsageError as exc:
            raise UsageError(f"{suite}: run[{i}]: {exc}" if suite else str(exc)) from None

    options = {
        "suite": str(suite) if suite else None,
        "entries": [vars(entry) for entry in entries],
        "device": device,
        "level": level,
        "max_memory": memory,
        "plugin": plugin or [],
    }
    if resume is not None:
        run_dir = resume
        writer = RunWriter(run_dir, json.loads((run_dir / META_FILE).read_text()), resume=True)
    else:
        run_dir = create_run_dir(out, label)
        writer = RunWriter(run_dir, run_metadata(options, torch_device))
    done_cells = writer.finished_cells
    started = time.perf_counter()
    jobs = [
        (entry, index, entry_seed, cell, params)
        for entry, the_plan in plans
        for params in [plan_estimator_params(the_plan.cells)]
        for entry_seed in entry.seeds
        for index, cell in enumerate(the_plan.cells)
        if cell_seed_of(cell, entry_seed, entry.samples, entry.batch) not in done_cells
    ]
    total = sum(len(p.cells) * len(e.seeds) for e, p in plans)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("cells, {task.fields[failed]} failed"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        failed = sum(1 for r in writer.rows if r.get("status") == "failed")  # rows of a resumed run
        bar = progress.add_task("measuring", total=total, completed=total - len(jobs), failed=failed)

        def record(rows: list[dict], coords: dict) -> None:
            nonlocal failed
            writer.add(rows, coords)
            failed += sum(1 for r in rows if r.get("status") == "failed")
            progress.update(bar, advance=1, failed=failed)

        if workers is None and scheduler is None:
            for entry, _index, entry_seed, cell, params in jobs:
                for result in execute(
                    [cell],
                    entry.samples,
                    entry.batch,
                    entry_seed,
                    entry.repeats,
                    level,
                    estimator_params=params,
                    max_memory=memory,
                ):
                    record(result.rows, result.coords)
        else:
            from rpbench.distributed import Job, run_parallel

            work = [Job(entry, index, entry_seed) for entry, index, entry_seed, _, _ in jobs]
            run_parallel(work, workers, scheduler, device, level, plugin or [], record, memory)
    skipped = [s for _, p in plans for s in p.skipped]
    writer.finish(cells=total, skipped=skipped, seconds=time.perf_counter() - started)

    if not quiet:
        for task_name in dict.fromkeys(e.task for e in entries):
            cls = get_task(task_name)
            cells = [c for e, p in plans if e.task == task_name for c in p.cells]
            est_params = plan_estimator_params(cells)
            rows = [r for r in writer.rows if r["task"] == task_name]
            for table in summary_tables(rows, metric, [p.name for p in cls.params], est_params):
                console.print(table)
    if skipped:
        console.print(
            f"[yellow]skipped {len(skipped)} estimator/configuration pairs that do not apply "
            f"(see {run_dir / 'run.json'}), e.g. {skipped[0]}[/]"
        )
    console.print(f"wrote {len(writer.rows)} rows to {run_dir / RESULTS_FILE}")
    failed = [r for r in writer.rows if r.get("status") == "failed"]
    if failed:
        for row in failed:
            console.print(f"[red]failed: {row['task']} {row['estimator']} group {row['group']}: {row['error']}[/]")
        console.print(f"[red]{len(failed)} rows failed (status=failed in the CSV); the rest of the sweep completed[/]")
        raise typer.Exit(1)


def read_run_options(run_dir: Path) -> dict:
    """The options a run folder was started with (its ``run.json``); a :class:`UsageError` if unusable."""
    try:
        options = json.loads((run_dir / META_FILE).read_text())["options"]
        missing = [key for key in ("entries", "device", "level") if key not in options]
        if missing:
            raise KeyError(missing[0])
    except FileNotFoundError:
        raise UsageError(
            f"--resume {run_dir}: no {META_FILE} there; give a run folder that rpbench run created"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"--resume {run_dir}: {META_FILE} is damaged or from another version ({exc!r})") from None
    return options


def check_budget(entry: Entry) -> None:
    """The command line's K, n and repeats are in range."""
    if entry.samples < 2:
        raise UsageError(f"--samples {entry.samples}: need K >= 2 independent estimates to measure a variance")
    if entry.batch < 1:
        raise UsageError(f"--batch {entry.batch}: need n >= 1 samples per estimate")
    if entry.repeats < 1:
        raise UsageError(f"--repeats {entry.repeats}: need at least 1 timed repeat")


@app.command("report")
def report_command(
    run_dir: Annotated[Path, typer.Argument(help="A run folder (or its results.csv).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="markdown, latex or csv.")] = "markdown",
    metric: Annotated[str, typer.Option(help="The metric in the cells.")] = "variance",
    relative_to: Annotated[
        str | None, typer.Option("--relative-to", help="Show each cell as a ratio to this estimator.")
    ] = None,
    group: Annotated[str | None, typer.Option(help="Only this parameter group (e.g. mu, encoder).")] = None,
    columns: Annotated[
        str | None, typer.Option(help="Comma-separated keys that form the columns (default: all that vary, and group).")
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")] = None,
    where: WhereOption = None,
) -> None:
    """A publication table: estimators × task configurations, each cell the metric with its CI."""
    from rpbench.report import load_results, report_table

    keys = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    frame = select_rows(load_results(run_dir), where or [])
    text = report_table(frame, metric=metric, fmt=fmt, relative_to=relative_to, group=group, columns=keys)
    if output is None:
        print(text)
    else:
        write_output(output, text)
        console.print(f"wrote {output}")


@app.command("plot")
def plot_command(
    run_dir: Annotated[Path, typer.Argument(help="A run folder (or its results.csv).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="FILE.png or FILE.pdf")],
    x: Annotated[str, typer.Option(help="The swept parameter on the x axis (sigma, tau, k, steps, ...).")] = "sigma",
    metric: Annotated[str, typer.Option(help="The metric on the y axis.")] = "variance",
    group: Annotated[str | None, typer.Option(help="Only this parameter group.")] = None,
    where: WhereOption = None,
) -> None:
    """A figure: the metric against a swept parameter, one line per estimator, with CI bands."""
    from rpbench.plot import plot_metric
    from rpbench.report import load_results

    frame = select_rows(load_results(run_dir), where or [])
    written = plot_metric(frame, x=x, metric=metric, out=output, group=group)
    console.print(f"wrote {written}")


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
    from rpbench.compare import changes_table, compare, load_table, parse_metrics

    result = compare(load_table(baseline), load_table(new), parse_metrics(metric), tolerance, speed_tolerance, level)
    console.print(changes_table(result, only_changes=not all_rows))
    regressions, slow = len(result.regressions), len(result.speed_regressions)
    console.print(f"compared {result.matched} rows: {regressions} regressions, {slow} speed regressions")
    if result.failed:
        raise typer.Exit(1)


def select_rows(frame: pd.DataFrame, conditions: list[str]) -> pd.DataFrame:
    """Keep the rows where every ``key=value`` holds (values compared as numbers where both are)."""
    for condition in conditions:
        key, values = parse_assignment(condition, "--where")
        if key not in frame.columns:
            raise UsageError(f"--where {condition}: no column {key!r}; columns: {', '.join(frame.columns[:20])}, ...")
        column = frame[key]
        keep = column.astype(str).isin(values)
        numbers = pd.to_numeric(column, errors="coerce")
        for value in values:
            try:
                keep |= numbers == float(value)
            except ValueError:
                continue
        frame = frame[keep]
        if frame.empty:
            raise UsageError(
                f"--where {condition}: no row matches; values present: {', '.join(map(str, column.unique()[:10]))}"
            )
    return frame


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
