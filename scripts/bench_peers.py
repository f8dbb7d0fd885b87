"""``make bench-peers``: our estimators against optax.monte_carlo and Storchastic, same cells, one process tree.

What is measured
----------------
Throughput (estimates per second) of one gradient estimator on one model, for our implementation
and a peer library's, and whether both produce the same distribution of estimates.

* **Gaussian toy** (peer: optax 0.2.5 ``optax.monte_carlo``, JAX jit-compiled), in both precisions:
  float64 (ours ``dtype=float64``, our default; JAX with ``jax_enable_x64``) and float32 (ours
  ``dtype=float32``; JAX's default, as GPU users and JAX code run it).  ``x ~ N(μ = 1, σ² = 1)`` in
  D = 1, ``f(x) = x²`` and ``f(x) = cos x``; estimators pathwise, score function (no baseline) and
  measure-valued (coupled Weibull / double-sided Maxwell).  One call is N = 100,000 single-sample
  estimates of ``(∂/∂μ, ∂/∂σ)``.  optax differentiates with respect to log σ; its worker converts
  with ``∂/∂σ = (∂/∂ log σ)/σ``.  JAX's x64 switch is global to a process, so each precision has
  its own optax worker.
* **Categorical VAE** (peer: Storchastic 0.3.7, PyTorch): rpbench's ``discrete-vae`` task (20
  latents × 10 categories, 128 hidden units, the first 32 statically binarised ``digits`` images, the
  initial weights of ``model_seed`` 0).  Estimators: score function with the leave-one-out baseline
  and 2 samples (ours ``score+loo``, n = 2; Storchastic ``ScoreFunction(baseline_factory=
  "batch_average")``, which is the same baseline) and relaxed Gumbel-Softmax at τ = 1 (ours
  ``gumbel``, n = 1; Storchastic ``GumbelSoftmax``, not straight-through, annealing off).  One call is
  K = 200 estimates of the encoder (and decoder) gradient; Storchastic's are looped as a user would,
  one storch forward + ``storch.backward()`` per estimate.  The Storchastic worker builds the same
  model from the task (weights, minibatch, KL and likelihood) and negates its loss gradient.  In
  float32 (the VAEs' default) and float64 (``dtype=float64``, both sides).

How
---
Each side runs in its own long-lived worker process (``scripts/peers/ours.py``,
``scripts/peers/optax_gaussian.py``, ``scripts/peers/storchastic_vae.py``; protocol in
``scripts/peers/peer_protocol.py``): importing Storchastic patches torch globally, and warm workers
let the rounds interleave.  Per cell each worker builds the cell and warms up untimed (our
``estimator.prepare`` and a first call; JAX compilation and a call; a few Storchastic iterations).
Then ``--rounds`` rounds each time one full call per side, alternating which side goes first
(ours, peer; peer, ours; …).  The reported time is the median call; estimates/s = K / median;
ratio = ours / peer estimates/s.  The ratio of the fastest calls is shown beside it: on a loaded
machine it is the less noisy of the two (the load average is recorded for that reason).

Threads: every worker is pinned (CPU affinity) to the same ``--threads`` CPUs, with
``torch.set_num_threads``/``OMP_NUM_THREADS`` set to that count, and for one thread
``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1`` (XLA otherwise
sizes its pools from the CPUs the process may use).  Only one side computes at a time.

Agreement: the estimates of all timed rounds of a side are pooled (the rounds use different
seeds, so they are independent); ``scripts/peers/peer_stats.py`` compares the two sides' means (a
two-sample z test for one coordinate, a moment-matched χ² test on ``‖m_a − m_b‖²`` for a parameter
vector; p ≥ ``--alpha``) and their variances (the ``1 − alpha`` intervals of
``rpbench.metrics.summarize`` must overlap; the table shows the 95% intervals).
Where the exact gradient is known (the Gaussian toy) each side's bias interval is reported too.

Output: a header (CPU, threads, load average before and after, library versions), a throughput
table, an agreement table and one line per goal; the same in ``results/peers/peers.json`` and
``results/peers/peers.md``.  The exit code is 0 whenever the benchmark ran, whether or not a goal
is met (1 if a worker failed).

* **The limit** (peer: a second worker of ours in limit mode): on ``vae`` (pathwise) and
  ``discrete-vae`` (Gumbel-Softmax, τ = 1), ONE forward and backward of the same K × n samples as
  one batch, giving one summed gradient instead of K (``scripts/peers/ours.py``, ``limit_call``).
  It has no K estimates to compare; instead the worker checks at set-up that, with the same noise,
  the limit's gradient equals the mean of our K estimates.

Goals: Gaussian toy in float64, ours ≥ 1.0× optax for every estimator (and both test functions;
float32 is reported, with no goal); categorical VAE in float32, ours ≥ 4× Storchastic for both
estimators (float64 reported, no goal); VAE tasks in float32, ours ≥ 0.8× the limit.  ``--dtypes``
restricts the precisions (default both).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "scripts" / "peers"
sys.path.insert(0, str(PEERS))

from peer_stats import compare_group  # noqa: E402

WORKERS: dict[str, tuple[Path, dict[str, str]]] = {
    "ours": (PEERS / "ours.py", {}),
    "optax-float64": (PEERS / "optax_gaussian.py", {"RPBENCH_PEERS_DTYPE": "float64"}),  # jax_enable_x64 on
    "optax-float32": (PEERS / "optax_gaussian.py", {"RPBENCH_PEERS_DTYPE": "float32"}),  # JAX's default
    "storchastic": (PEERS / "storchastic_vae.py", {}),  # a torch worker: the precision is the cell's
    "limit": (PEERS / "ours.py", {}),  # a second worker of ours, in limit mode (see ours.limit_call)
}
"""Worker processes by name: the script and the environment it gets on top of :func:`worker_env`."""
DTYPES = ("float64", "float32")


@dataclass
class CellSpec:
    """One comparison: the same task and estimator on our side and on a peer's."""

    id: str
    peer: str
    task: str
    task_config: dict[str, Any]
    estimator: str
    estimator_config: dict[str, Any]
    samples: int
    batch: int
    groups: list[str]
    rounds: int
    goal_ratio: float | None
    """None: the cell is reported, with no goal."""
    goal_name: str | None
    dtype: str
    worker: str
    """The peer's worker process (:data:`WORKERS`); ``peer`` is its library's name."""
    seconds: dict[str, list[float]] = field(default_factory=dict)

    def message(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "task": self.task,
            "task_config": self.task_config,
            "estimator": self.estimator,
            "estimator_config": self.estimator_config,
            "samples": self.samples,
            "batch": self.batch,
            "groups": self.groups,
            "seed": 0,
        }


def cells(args: argparse.Namespace) -> list[CellSpec]:
    """Every cell of the comparison, in each precision of ``--dtypes``, filtered by ``--only``."""
    out = []
    for dtype in args.dtypes:
        for fn, k in (("quadratic", 0.0), ("cos", 1.0)):
            config = {"dim": 1, "mu": 1.0, "sigma": 1.0, "fn": fn, "k": k, "dtype": dtype}
            for est in ("pathwise", "score", "mvd"):
                goal = dtype == "float64"  # float32 is reported, with no goal
                out.append(
                    CellSpec(
                        f"gaussian/{fn}/{est}/{dtype}",
                        "optax",
                        "gaussian",
                        config,
                        est,
                        {},
                        args.gaussian_samples,
                        1,
                        ["mu", "sigma"],
                        args.gaussian_rounds,
                        1.0 if goal else None,
                        f"gaussian {est} (float64): ours >= 1.0x optax" if goal else None,
                        dtype,
                        f"optax-{dtype}",
                    )
                )
    for dtype in args.dtypes:
        for est, batch, est_config in (("score+loo", 2, {}), ("gumbel", 1, {"tau": 1.0})):
            goal = dtype == "float32"  # the VAEs' default; float64 is reported, with no goal
            out.append(
                CellSpec(
                    f"discrete-vae/{est}/{dtype}",
                    "storchastic",
                    "discrete-vae",
                    {"dtype": dtype},
                    est,
                    est_config,
                    args.vae_samples,
                    batch,
                    ["encoder", "decoder"],
                    args.vae_rounds,
                    4.0 if goal else None,
                    f"discrete-vae {est} (float32): ours >= 4x storchastic" if goal else None,
                    dtype,
                    "storchastic",
                )
            )
    if "float32" in args.dtypes:  # ours against ours: in the VAEs' default precision only
        for task, est, est_config in (("vae", "pathwise", {}), ("discrete-vae", "gumbel", {"tau": 1.0})):
            out.append(
                CellSpec(
                    f"{task}/{est}/limit",
                    "limit",
                    task,
                    {},
                    est,
                    est_config,
                    args.vae_samples,
                    1,
                    ["encoder", "decoder"],
                    args.vae_rounds,
                    0.8,
                    f"{task} {est}: ours >= 0.8x the limit (one forward+backward of the K x n samples)",
                    "float32",
                    "limit",
                )
            )
    return [c for c in out if not args.only or any(s in c.id for s in args.only)]


class WorkerProcess:
    """A running worker: send one JSON request, read one JSON answer."""

    def __init__(self, side: str, env: dict[str, str], cpus: list[int]) -> None:
        self.side = side
        script, extra = WORKERS[side]
        self.proc = subprocess.Popen(
            [sys.executable, str(script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**env, **extra},
            cwd=str(ROOT),
            preexec_fn=lambda: os.sched_setaffinity(0, cpus),
        )
        self.hello = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.side} exited (code {self.proc.wait()}); see its stderr above")
        answer = json.loads(line)
        if not answer.get("ok"):
            raise RuntimeError(f"worker {self.side} failed:\n{answer.get('error')}")
        return answer

    def ask(self, **request: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(RuntimeError, BrokenPipeError):
                self.ask(op="quit")
            self.proc.wait(timeout=30)


def worker_env(threads: int) -> dict[str, str]:
    """The environment every worker gets: same thread limits, rpbench importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RPBENCH_PEERS_THREADS"):
        env[name] = str(threads)
    env["JAX_PLATFORMS"] = "cpu"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if threads == 1:
        flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {flags}".strip()
    return env


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "rpbench"], cwd=ROOT, capture_output=True, text=True)
        return head.stdout.strip() + (" (rpbench/ has uncommitted changes)" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def fmt(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    return f"{x:.{digits}g}"


def interval(summary: dict[str, Any], name: str) -> str:
    return f"{fmt(summary[name])} [{fmt(summary[name + '_lo'])}, {fmt(summary[name + '_hi'])}]"


def run_cell(cell: CellSpec, workers: dict[str, WorkerProcess], tmp: str, alpha: float, index: int) -> dict[str, Any]:
    """Set a cell up on both sides, time interleaved rounds, compare the pooled estimates."""
    sides = ("ours", cell.peer)
    process = {"ours": workers["ours"], cell.peer: workers[cell.worker]}
    setups = {side: process[side].ask(op="setup", cell={**cell.message(), "limit": side == "limit"}) for side in sides}
    for side, setup in setups.items():
        if setup.get("dtype", cell.dtype) != cell.dtype:
            raise RuntimeError(f"{cell.id}: the {side} side runs {setup['dtype']}, not {cell.dtype}")
    load_before = os.getloadavg()
    cell.seconds = {side: [] for side in sides}
    for r in range(cell.rounds):
        order = sides if r % 2 == 0 else sides[::-1]
        for side in order:
            seed = 1_000_003 * (index + 1) + 1009 * r + (0 if side == "ours" else 7)
            cell.seconds[side].append(process[side].ask(op="run", cell=cell.id, seed=seed)["seconds"])
    load_after = os.getloadavg()
    files = {side: process[side].ask(op="dump", cell=cell.id, dir=tmp)["files"] for side in sides}
    median = {side: statistics.median(cell.seconds[side]) for side in sides}
    rate = {side: cell.samples / median[side] for side in sides}
    ratio = rate["ours"] / rate[cell.peer]
    exact = setups["ours"].get("exact") or {}
    groups = {}
    for group in cell.groups if cell.peer != "limit" else ():  # the limit yields one summed gradient, not K
        a = np.load(files["ours"][group])
        b = np.load(files[cell.peer][group])
        groups[group] = compare_group(a, b, exact.get(group), cell.seconds["ours"], cell.seconds[cell.peer], alpha)
        del a, b
    for paths in files.values():
        for path in paths.values():
            Path(path).unlink(missing_ok=True)
    return {
        "id": cell.id,
        "peer": cell.peer,
        "dtype": cell.dtype,
        "task": cell.task,
        "task_config": cell.task_config,
        "estimator": cell.estimator,
        "estimator_config": cell.estimator_config,
        "samples_per_call": cell.samples,
        "batch": cell.batch,
        "rounds": cell.rounds,
        "setup": setups,
        "seconds": cell.seconds,
        "median_seconds": median,
        "estimates_per_second": rate,
        "ratio": ratio,
        "ratio_fastest": min(cell.seconds[cell.peer]) / min(cell.seconds["ours"]),
        "goal_name": cell.goal_name,
        "goal_ratio": cell.goal_ratio,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "groups": groups,
    }


def tables(results: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Markdown throughput and agreement tables."""
    speed = [
        "| cell | peer | dtype | K/call | ours est/s | peer est/s | ratio | ratio of fastest calls | "
        "ours s/call median (min–max) | peer s/call median (min–max) |",
        "|---|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for c in results:
        ours, peer = c["seconds"]["ours"], c["seconds"][c["peer"]]
        speed.append(
            f"| {c['id']} | {c['peer']} | {c['dtype']} | {c['samples_per_call']} | "
            f"{fmt(c['estimates_per_second']['ours'])} | "
            f"{fmt(c['estimates_per_second'][c['peer']])} | {c['ratio']:.2f}× | {c['ratio_fastest']:.2f}× | "
            f"{fmt(statistics.median(ours))} ({fmt(min(ours), 3)}–{fmt(max(ours), 3)}) | "
            f"{fmt(statistics.median(peer))} ({fmt(min(peer), 3)}–{fmt(max(peer), 3)}) |"
        )
    agree = [
        "| cell | group | P | K each | exact | ours mean [95% CI] | peer mean [95% CI] | mean test p | "
        "ours variance [95% CI] | peer variance [95% CI] | agree |",
        "|---|---|---:|---:|---:|---|---|---:|---|---|---|",
    ]
    for c in results:
        for group, g in c["groups"].items():
            o, p = g["ours"], g["peer"]
            verdict = "yes" if g["agree"] else "**NO**"
            level = f"{100 * g['variance_ci_level']:g}%"
            if not g["variance_ci_overlap"]:
                verdict += f" ({level} variance CIs disjoint)"
            elif not g["variance_ci_overlap_95"]:
                verdict += f" (95% variance CIs disjoint, {level} overlap)"
            agree.append(
                f"| {c['id']} | {group} | {o['p']} | {o['k']} | {fmt(o.get('exact'))} | {interval(o, 'mean')} | "
                f"{interval(p, 'mean')} | {g['mean_test']['p_value']:.3g} | {interval(o, 'variance')} | "
                f"{interval(p, 'variance')} | {verdict} |"
            )
    return speed, agree


def precision_table(results: list[dict[str, Any]]) -> list[str]:
    """Each peer cell measured in both precisions, side by side: est/s of each side and the ratio."""
    by_stem: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for c in results:
        if c["peer"] != "limit":
            by_stem.setdefault((c["id"].rsplit("/", 1)[0], c["peer"]), {})[c["dtype"]] = c
    rows = [(stem, peer, both) for (stem, peer), both in by_stem.items() if set(DTYPES) <= set(both)]
    if not rows:
        return []
    lines = [
        "| cell | peer | float64: ours est/s | peer est/s | ours ÷ peer "
        "| float32: ours est/s | peer est/s | ours ÷ peer |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for stem, peer, both in rows:
        parts = []
        for dtype in DTYPES:
            c = both[dtype]
            rate = c["estimates_per_second"]
            parts += [fmt(rate["ours"]), fmt(rate[peer]), f"{c['ratio']:.2f}×"]
        lines.append(f"| {stem} | {peer} | " + " | ".join(parts) + " |")
    return ["## Both precisions", "", *lines, ""]


def limit_notes(results: list[dict[str, Any]]) -> list[str]:
    """The limit rows' check: with the same noise, the limit's one gradient is the mean of our K."""
    lines = [
        f"- {c['id']}: with the same noise, max |limit gradient − mean of our {c['samples_per_call']} estimates| "
        f"= {c['setup']['limit']['limit_vs_mean_of_estimates_max_abs']:.2g}"
        for c in results
        if c["peer"] == "limit"
    ]
    if not lines:
        return []
    intro = (
        "The *limit* is one forward and backward of the same K × n samples as one batch, giving one "
        "summed gradient instead of K; it has no K estimates to compare, so it is checked instead:"
    )
    return ["## The limit", "", intro, "", *lines, ""]


def goals(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One goal per estimator: every cell of it must reach its ratio."""
    by_goal: dict[str, list[dict[str, Any]]] = {}
    for c in results:
        if c["goal_name"] is not None:  # reported, with no goal
            by_goal.setdefault(c["goal_name"], []).append(c)
    out = []
    for name, members in by_goal.items():
        worst = min(members, key=lambda c: c["ratio"])
        out.append(
            {
                "goal": name,
                "met": all(c["ratio"] >= c["goal_ratio"] for c in members),
                "min_ratio": worst["ratio"],
                "ratios": {c["id"]: c["ratio"] for c in members},
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (and pinned CPUs) per side")
    parser.add_argument("--gaussian-samples", type=int, default=100_000, help="N estimates per Gaussian call")
    parser.add_argument("--gaussian-rounds", type=int, default=15, help="timed rounds per Gaussian cell and side")
    parser.add_argument("--vae-samples", type=int, default=200, help="K estimates per VAE call")
    parser.add_argument("--vae-rounds", type=int, default=7, help="timed rounds per VAE cell and side")
    parser.add_argument("--alpha", type=float, default=1e-3, help="level of each mean test (agreement)")
    parser.add_argument("--only", nargs="*", default=[], help="run only cells whose id contains one of these")
    parser.add_argument(
        "--dtypes",
        type=lambda text: [d.strip() for d in text.split(",")],
        default=list(DTYPES),
        help="comma list of precisions to compare in (float64,float32)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "peers", help="folder for peers.json/.md")
    args = parser.parse_args(argv)
    if not args.dtypes or not set(args.dtypes) <= set(DTYPES):
        parser.error(f"--dtypes {','.join(args.dtypes)}: choose from {', '.join(DTYPES)}")

    available = sorted(os.sched_getaffinity(0))
    if not 1 <= args.threads <= len(available):
        parser.error(f"--threads must be between 1 and {len(available)} (the CPUs this process may use)")
    cpus = available[: args.threads]
    specs = cells(args)
    if not specs:
        parser.error("--only matched no cell")
    env = worker_env(args.threads)
    load_start = os.getloadavg()
    started = datetime.datetime.now(datetime.UTC)

    workers: dict[str, WorkerProcess] = {}
    results: list[dict[str, Any]] = []
    failures: list[str] = []
    infos: dict[str, Any] = {}
    try:
        for side in ["ours", *sorted({c.worker for c in specs})]:
            try:
                workers[side] = WorkerProcess(side, env, cpus)
                infos[side] = workers[side].ask(op="info")["info"]
            except Exception as error:  # a peer library that is not installed: skip its cells
                failures.append(f"worker {side}: {error}")
                print(f"worker {side} did not start: {error}", file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
            for index, cell in enumerate(specs):
                if "ours" not in workers or cell.worker not in workers:
                    failures.append(f"{cell.id}: skipped (worker missing)")
                    continue
                print(f"[bench-peers] {cell.id}: {cell.rounds} interleaved rounds ...", file=sys.stderr, flush=True)
                try:
                    results.append(run_cell(cell, workers, tmp, args.alpha, index))
                except Exception as error:
                    failures.append(f"{cell.id}: {error}")
                    print(f"{cell.id} failed: {error}", file=sys.stderr)
    finally:
        for worker in workers.values():
            worker.close()
    load_end = os.getloadavg()

    meta = {
        "started_utc": started.isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpu_model": cpu_model(),
        "cpus_online": os.cpu_count(),
        "cpus_used": cpus,
        "threads_per_side": args.threads,
        "xla_flags": env.get("XLA_FLAGS", ""),
        "loadavg_start": load_start,
        "loadavg_end": load_end,
        "python": platform.python_version(),
        "rpbench_commit": git_commit(),
        "workers": infos,
        "alpha": args.alpha,
        "timing": "median of interleaved rounds, one full call each (alternating which side goes first)",
    }
    goal_list = goals(results)
    speed, agree = tables(results)
    versions = ", ".join(
        f"{name} {value}"
        for side in infos.values()
        for name, value in side.items()
        if name in ("torch", "jax", "jaxlib", "optax", "storchastic", "numpy")
    )
    header = [
        "# Peer comparison: rpbench vs optax.monte_carlo, Storchastic and the limit",
        "",
        f"- started {meta['started_utc']} on `{meta['cpu_model']}` ({meta['cpus_online']} CPUs online)",
        f"- threads per side: {args.threads}, pinned to CPUs {cpus}; XLA_FLAGS=`{meta['xla_flags']}`",
        f"- load average (1, 5, 15 min): start {_load(load_start)}, end {_load(load_end)}",
        f"- python {meta['python']}; {_dedupe(versions)}; rpbench {meta['rpbench_commit']}",
        f"- {meta['timing']}; agreement: mean test p ≥ {args.alpha:g} and overlapping "
        f"{100 * (1 - args.alpha):g}% variance CIs (the table shows 95% CIs)",
        "",
    ]
    goal_lines = [
        f"GOAL {g['goal']}: {'met' if g['met'] else 'NOT met'} (min ratio {g['min_ratio']:.2f}×; "
        + ", ".join(f"{k} {v:.2f}×" for k, v in g["ratios"].items())
        + ")"
        for g in goal_list
    ]
    disagree = [f"{c['id']}/{g}" for c in results for g, v in c["groups"].items() if not v["agree"]]
    agreement_line = (
        "AGREEMENT: every cell's sides agree in mean and variance"
        if not disagree
        else f"AGREEMENT: sides DISAGREE in {', '.join(disagree)}"
    )
    report = [
        *header,
        "## Throughput",
        "",
        *speed,
        "",
        *precision_table(results),
        "## Agreement of the gradient estimates",
        "",
        *agree,
        "",
        *limit_notes(results),
        "## Goals",
        "",
        *[f"- {line}" for line in goal_lines],
        f"- {agreement_line}",
    ]
    if failures:
        report += ["", "## Failures", "", *[f"- {f}" for f in failures]]
    print("\n".join(report))

    args.out.mkdir(parents=True, exist_ok=True)
    payload = {"meta": meta, "cells": results, "goals": goal_list, "agreement": agreement_line, "failures": failures}
    (args.out / "peers.json").write_text(json.dumps(payload, indent=2) + "\n")
    (args.out / "peers.md").write_text("\n".join(report) + "\n")
    print(f"\nwrote {args.out / 'peers.json'} and {args.out / 'peers.md'}")
    return 1 if failures else 0


def _load(values: tuple[float, float, float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def _dedupe(text: str) -> str:
    seen: list[str] = []
    for part in text.split(", "):
        if part not in seen:
            seen.append(part)
    return ", ".join(seen)


if __name__ == "__main__":
    sys.exit(main())
