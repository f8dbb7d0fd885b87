"""``make bench-limit``: our engine against *the limit* on the VAE tasks, at the defaults and at the literature's scale.

What is measured
----------------
For each configuration (a task, its parameters, an estimator, n samples per estimate, K estimates):

* **ours** — exactly what ``rpbench run`` times for that cell: one pass over the cell's chunks
  (:func:`rpbench.engine.chunk_size` at ``--max-memory``, default 512 MiB), each chunk
  :func:`rpbench.engine.draw_chunk` (a generator seeded per chunk, ``estimator.estimate``, the
  estimates viewed as blocks), giving K per-estimate gradients;
* **the limit** — ONE forward and backward of the same K × n samples (the same noise, drawn from
  the same per-chunk generators) as one batch, giving one summed gradient instead of K: the
  estimator's surrogate for all of them at once (:data:`LIMIT_SURROGATES`), the encoder run once.
  No K estimates can be had for less.  Before timing, each configuration checks that with the same
  noise K × the limit's gradient equals the sum of our K estimates (``check`` in the JSON).

The two sides alternate in one process (ours, limit; limit, ours; …: ``--rounds`` calls a side),
with ``--threads`` torch threads (1 by default, as ``rpbench run --timing-threads`` and
``make bench-peers``).  Each side's seconds per call are summarised by their median with the
distribution-free order-statistic interval (:func:`rpbench.timing.median_interval`); the ratio
(ours ÷ limit in estimates per second, i.e. limit seconds ÷ our seconds) is the median of the
per-round ratios, with the same kind of interval.  Estimates per second are K / median seconds.

Memory: the peak RSS of a full ``rpbench run`` cell (truth, two reduction passes, timing) at K = 2 and
8 chunks of the configuration, each in a fresh process (``scripts/peak_memory.py``),
with ``-p reference=100`` where the truth is a reference (the reference only sets the truth's
precision; 20,000 samples would take minutes at the literature's scale).

Configurations (``--only`` selects by id):

* ``discrete-vae`` (20 × 10 categorical) with Gumbel-Softmax (τ = 1, n = 1) and the score function
  with the leave-one-out baseline (n = 2), at the defaults (digits, 128 hidden, minibatch 32) and at
  Jang, Gu & Poole's (2017) scale: MNIST (``mnist5k``), a 784-512-256 ReLU MLP each way, minibatch 100;
* ``bernoulli-vae`` (200 binary latents, the model of REBAR, RELAX and DisARM) with DisARM (Dong,
  Mnih & Tucker 2020, the latest of those estimators and the task's own training and reference
  estimator; REBAR and RELAX use the Concrete relaxation only as a biased baseline), n = 1, at the
  defaults (linear, digits, minibatch 32) and with the literature's nonlinear model (two 200-unit
  tanh layers each way) on ``mnist5k``, minibatch 100;
* ``vae`` (20-dim Gaussian) with pathwise, n = 1, at the defaults.

``--quick`` is a smoke test (the defaults only, K = 20, 3 rounds, one peak-RSS run at one chunk).
``--profile`` prints torch.profiler's operator tables of both sides instead of timing;
``--glibc-defaults`` leaves malloc's thresholds as glibc sets them (rpbench before
:mod:`rpbench.allocator`; the peak-RSS runs are ``rpbench run`` as it is).
Output: ``limit.md`` (the machine, then the table) and ``limit.json`` (every timed value) in ``--out``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from peak_memory import peak_of_run  # noqa: E402

from rpbench.allocator import keep_freed_blocks  # noqa: E402
from rpbench.engine import (  # noqa: E402
    cell_seed,
    chunk_layout,
    chunk_seed,
    chunk_size,
    draw_chunk,
)
from rpbench.estimators.base import Estimator, amortizer, tree_leaves  # noqa: E402
from rpbench.options import parse_memory  # noqa: E402
from rpbench.params import seed_config  # noqa: E402
from rpbench.registry import get_estimator, get_task, load_builtins  # noqa: E402
from rpbench.results import run_metadata  # noqa: E402
from rpbench.tasks.base import Task, Theta  # noqa: E402
from rpbench.timing import Summary, median_interval, seconds_of  # noqa: E402

CPU = torch.device("cpu")
GOAL = 0.8
"""The issue's goal: ours ≥ 0.8 × the limit's estimates per second."""

JANG = {"data": "mnist5k", "hidden": 512, "hidden2": 256, "minibatch": 100}
"""Jang, Gu & Poole (2017): MNIST, a 784-512-256 ReLU MLP each way, minibatch 100 (20 × 10 latents: the default)."""

BERNOULLI_NONLINEAR = {"data": "mnist5k", "layers": "nonlinear", "minibatch": 100}
"""The nonlinear Bernoulli VAE of REBAR/RELAX/DisARM: 784-200-200-200 tanh (200 latents: the default), minibatch 100."""


@dataclass
class Config:
    """One configuration: the cell that is timed and the K of its peak-RSS runs."""

    id: str
    label: str
    task: str
    params: dict[str, Any]
    estimator: str
    estimator_params: dict[str, Any]
    batch: int
    samples: int
    """K per timed call; 0: ``chunks`` whole chunks of ``--max-memory`` (the literature's scale)."""
    scale: str
    chunks: int = 0
    rss: tuple[int, ...] = (2, 8)
    """The K of the peak-RSS runs, in chunks: K = 2 and 8 × the cell's chunk size (memory flat in K)."""

    def cli_params(self) -> list[str]:
        """The task parameters as ``rpbench run -p`` arguments (a reference truth kept cheap)."""
        return [f"{k}={v}" for k, v in self.params.items()] + ["reference=100"]


def configurations(quick: bool) -> list[Config]:
    """Every configuration, in table order; ``quick``: the defaults only, small K."""
    gumbel: dict[str, Any] = {"tau": 1.0}
    dvae, bvae = "`discrete-vae`", "`bernoulli-vae`"
    gs, loo = "Gumbel-Softmax τ = 1", "score + leave-one-out"
    dv, bv, nonlinear = "discrete-vae", "bernoulli-vae", BERNOULLI_NONLINEAR
    full = [
        Config("dvae-gumbel", f"{dvae}, {gs}", dv, {}, "gumbel", gumbel, 1, 200, "defaults"),
        Config("dvae-loo", f"{dvae}, {loo}", dv, {}, "score+loo", {}, 2, 200, "defaults"),
        Config("dvae-gumbel-jang", f"{dvae}, {gs}", dv, JANG, "gumbel", gumbel, 1, 0, "Jang", 2),
        Config("dvae-loo-jang", f"{dvae}, {loo}", dv, JANG, "score+loo", {}, 2, 0, "Jang", 2),
        Config("bvae-disarm", f"{bvae}, DisARM", bv, {}, "disarm", {}, 1, 200, "defaults"),
        Config("bvae-disarm-nonlinear", f"{bvae}, DisARM", bv, nonlinear, "disarm", {}, 1, 0, "literature", 2),
        Config("vae-pathwise", "`vae`, pathwise", "vae", {}, "pathwise", {}, 1, 200, "defaults"),
    ]  # fmt: skip
    if not quick:
        return full
    small = [c for c in full if c.scale == "defaults"]
    for c in small:
        c.samples, c.rss = 20, ()
    small[0].rss = (1,)
    return small


def with_defaults(params: Sequence[Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Every parameter's first default value, then the overrides (as ``rpbench run`` fills a cell)."""
    return {p.name: p.default_values[0] for p in params} | overrides


def build(config: Config) -> tuple[Task, Estimator]:
    """The task and the estimator of a configuration, on the CPU."""
    task_cls, est_cls = get_task(config.task), get_estimator(config.estimator)
    task = task_cls(with_defaults(task_cls.params, config.params), CPU)
    return task, est_cls(with_defaults(est_cls.params, config.estimator_params))


# -- the limit ----------------------------------------------------------------------------------------
LimitSurrogate = Callable[[Task, Estimator, Theta, torch.Tensor], torch.Tensor]


def _pathwise(task: Task, estimator: Estimator, theta: Theta, noise: torch.Tensor) -> torch.Tensor:
    return task.objective(theta, task.sample(theta, noise)).mean()


def _gumbel(task: Task, estimator: Estimator, theta: Theta, noise: torch.Tensor) -> torch.Tensor:
    relaxed = task.latent.soft(task.perturb(theta, noise), float(estimator.config["tau"]))  # type: ignore[attr-defined]
    return task.objective(theta, relaxed).mean()


def _leave_one_out(task: Task, estimator: Estimator, theta: Theta, noise: torch.Tensor) -> torch.Tensor:
    z = task.sample(theta, noise).detach()  # (K, n, U, …)
    f = task.objective(theta, z)  # (K, n, U)
    others = (f.detach().sum(1, keepdim=True) - f.detach()) / (f.shape[1] - 1)  # over each estimate's n samples
    return (f + (f.detach() - others) * task.log_prob(theta, z)).mean()


def _disarm(task: Task, estimator: Estimator, theta: Theta, noise: torch.Tensor) -> torch.Tensor:
    logits = task.logits(theta)  # type: ignore[attr-defined]
    hard = task.latent.hard  # type: ignore[attr-defined]
    b_plus, b_minus = hard(logits + noise).detach(), hard(logits - noise).detach()
    f_plus, f_minus = task.objective(theta, b_plus), task.objective(theta, b_minus)
    g = type(estimator).logit_gradient(f_plus.detach(), f_minus.detach(), b_plus, b_minus, noise, logits.detach())  # type: ignore[attr-defined]
    return (0.5 * (f_plus + f_minus) + (g.detach() * logits).sum(-1)).mean()


LIMIT_SURROGATES: dict[str, LimitSurrogate] = {
    "pathwise": _pathwise,
    "gumbel": _gumbel,
    "score+loo": _leave_one_out,
    "disarm": _disarm,
}
"""Each estimator's surrogate for noise ``(K, n, …)`` as ONE batch: the mean over all K · n · U terms,
whose gradient is the mean of the K estimates (the leave-one-out baseline still over each estimate's n)."""


def limit_noise(task: Task, sizes: Sequence[int], batch: int, seed: int) -> torch.Tensor:
    """The noise our chunks draw first (each estimator here starts with ``task.noise(generator, (c, n))``), joined."""
    draws = [
        task.noise(torch.Generator(device=task.device).manual_seed(chunk_seed(seed, i)), (size, batch))
        for i, size in enumerate(sizes)
    ]
    return draws[0] if len(draws) == 1 else torch.cat(draws)


def limit_call(task: Task, estimator: Estimator, sizes: Sequence[int], batch: int, seed: int) -> list[torch.Tensor]:
    """*The limit*: one forward and backward of the K × n samples as one batch; θ's gradient, leaf by leaf.

    The encoder runs once (``task.encoded``, where the task offers it), as in our amortized estimators.
    """
    noise = limit_noise(task, sizes, batch, seed)
    theta = _fresh(task.theta)
    leaves = tree_leaves(theta)
    hooks = amortizer(task)
    inputs = hooks.encoded(theta) if hooks is not None else theta
    loss = LIMIT_SURROGATES[estimator.name](task, estimator, inputs, noise)
    return list(torch.autograd.grad(loss, leaves))


def _fresh(tree: Theta) -> Theta:
    return {k: _fresh(v) if isinstance(v, dict) else v.detach().requires_grad_(True) for k, v in tree.items()}


# -- ours -----------------------------------------------------------------------------------------
def our_pass(task: Task, estimator: Estimator, sizes: Sequence[int], batch: int, seed: int) -> None:
    """One timed pass of :func:`rpbench.engine.draw_estimates`: every chunk drawn, the estimates dropped."""
    for index in range(len(sizes)):
        draw_chunk(task, estimator, sizes, batch, seed, index)


def check(task: Task, estimator: Estimator, sizes: Sequence[int], batch: int, seed: int) -> dict[str, float]:
    """With the same noise: K × the limit's gradient against the sum of our K estimates (float64).

    Returns the largest absolute difference and that divided by the largest |sum| (over all of θ).
    """
    samples = sum(sizes)
    sums: list[torch.Tensor] | None = None
    for index in range(len(sizes)):
        blocks = draw_chunk(task, estimator, sizes, batch, seed, index)
        chunk = [b.to(torch.float64).sum(0) for group in blocks.values() for b in group]
        sums = chunk if sums is None else [a + b for a, b in zip(sums, chunk, strict=True)]
    assert sums is not None
    limit = [samples * g.to(torch.float64).reshape(-1) for g in limit_call(task, estimator, sizes, batch, seed)]
    gap = max(float((a - b).abs().max()) for a, b in zip(sums, limit, strict=True))
    scale = max(float(a.abs().max()) for a in sums)
    return {"max_abs": gap, "max_rel": gap / scale if scale > 0 else gap, "max_abs_sum": scale}


# -- timing ---------------------------------------------------------------------------------------
@dataclass
class Timed:
    """Both sides' seconds per call, in round order, and what they are summarised to."""

    ours: list[float] = field(default_factory=list)
    limit: list[float] = field(default_factory=list)

    @property
    def ratios(self) -> list[float]:
        """Per round: limit seconds ÷ our seconds (ours ÷ limit in estimates per second)."""
        return [b / a for a, b in zip(self.ours, self.limit, strict=True)]


def time_rounds(ours: Callable[[], object], limit: Callable[[], object], rounds: int) -> Timed:
    """``rounds`` calls a side, alternating which goes first (ours, limit; limit, ours; …), after one warm-up each."""
    ours()
    limit()
    timed = Timed()
    sync = lambda: None  # noqa: E731 (the CPU has no queue to wait for)
    for r in range(rounds):
        order = ("ours", "limit") if r % 2 == 0 else ("limit", "ours")
        for side in order:
            seconds = seconds_of(ours if side == "ours" else limit, 1, sync)
            (timed.ours if side == "ours" else timed.limit).append(seconds)
    return timed


def profile(config: Config, max_memory: int, calls: int = 3, rows: int = 14) -> str:
    """torch.profiler's operator table (self CPU time, by input shapes) of ``calls`` calls a side."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as profiler

    task, estimator, sizes, seed = prepared(config, max_memory)
    sides: dict[str, Callable[[], object]] = {
        "ours": lambda: our_pass(task, estimator, sizes, config.batch, seed),
        "limit": lambda: limit_call(task, estimator, sizes, config.batch, seed),
    }
    out = [f"## {config.id}: K = {config.samples}, chunks {list(sizes)}, {calls} calls a side"]
    for side, call in sides.items():
        call()
        with profiler(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            for _ in range(calls):
                call()
        table = prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=rows)
        out += [f"### {side}", table]
    return "\n".join(out)


def prepared(config: Config, max_memory: int) -> tuple[Task, Estimator, list[int], int]:
    """The configuration built and prepared as ``rpbench run`` would: task, estimator, chunk sizes, seed.

    A configuration given in whole chunks (``chunks``) gets its K here.
    """
    task, estimator = build(config)
    if config.chunks:
        config.samples = config.chunks * full_chunk(task, estimator, config.batch, max_memory)
    seeded = seed_config(task.config, type(task).params)
    seed = cell_seed(0, task.name, seeded, estimator.name, estimator.config, config.samples, config.batch)
    estimator.prepare(task, config.batch, torch.Generator().manual_seed(seed))
    first = chunk_size(task, estimator, config.samples, config.batch, max_memory)
    return task, estimator, chunk_layout([config.samples], first, first), seed


def full_chunk(task: Task, estimator: Estimator, batch: int, max_memory: int) -> int:
    """The estimates one chunk of ``max_memory`` holds (what a large K is drawn in)."""
    return chunk_size(task, estimator, 2**62, batch, max_memory)


def summary_dict(summary: Summary) -> dict[str, float]:
    return {"median": summary.median, "lo": summary.lo, "hi": summary.hi, "min": summary.minimum}


def measure(config: Config, args: argparse.Namespace, max_memory: int) -> dict[str, Any]:
    """Build, check, time and (in subprocesses) peak-RSS one configuration."""
    started = time.perf_counter()
    task, estimator, sizes, seed = prepared(config, max_memory)
    agreement = check(task, estimator, sizes, config.batch, seed)
    params = sum(leaf.numel() for leaf in tree_leaves(task.theta))
    load_before = os.getloadavg()
    timed = time_rounds(
        lambda: our_pass(task, estimator, sizes, config.batch, seed),
        lambda: limit_call(task, estimator, sizes, config.batch, seed),
        args.rounds,
    )
    load_after = os.getloadavg()
    ours, limit = median_interval(timed.ours, args.level), median_interval(timed.limit, args.level)
    ratio = median_interval(timed.ratios, args.level)
    rss = []
    most = full_chunk(task, estimator, config.batch, max_memory)
    for samples in [m * most for m in config.rss]:
        peak, chunk, wall = peak_of_run(
            config.task, config.estimator, samples, args.max_memory, config.cli_params(), config.batch, args.threads
        )
        rss.append({"samples": samples, "chunk": chunk, "peak_mib": peak, "wall_seconds": wall})
    return {
        **asdict(config),
        "parameters": params,
        "chunks": list(sizes),
        "seed": seed,
        "check": agreement,
        "seconds": {"ours": timed.ours, "limit": timed.limit},
        "ratios": timed.ratios,
        "ours": summary_dict(ours),
        "limit": summary_dict(limit),
        "ratio": summary_dict(ratio),
        "estimates_per_second": {"ours": config.samples / ours.median, "limit": config.samples / limit.median},
        "goal_met": ratio.median >= GOAL,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "rss": rss,
        "wall_seconds": time.perf_counter() - started,
    }


# -- the report ------------------------------------------------------------------------------------
def fmt(x: float, digits: int = 3) -> str:
    return "–" if x != x else f"{x:.{digits}g}"


def ms_interval(s: dict[str, float]) -> str:
    return f"{1e3 * s['median']:.4g} [{fmt(1e3 * s['lo'])}, {fmt(1e3 * s['hi'])}]"


def describe(c: dict[str, Any]) -> str:
    params = ", ".join(f"{k}={v}" for k, v in c["params"].items()) or "defaults"
    return f"{c['label']}, n = {c['batch']} ({params})"


TABLE_HEADER = [
    "| configuration | P | K per call (chunks) | ours ms/call | limit ms/call | ours est/s | limit est/s "
    "| ours ÷ limit | goal ≥ 0.8× | peak RSS of `rpbench run` (MiB) at K |",
    "|---|---:|---|---|---|---:|---:|---|---|---|",
]


def table_row(c: dict[str, Any]) -> str:
    chunks = c["chunks"]
    layout = f"{c['samples']} ({' + '.join(str(size) for size in chunks)})"
    r = c["ratio"]
    rss = "; ".join(f"{x['samples']}: {x['peak_mib']:.0f}" for x in c["rss"]) or "–"
    verdict = "met" if c["goal_met"] else "**not met**"
    return (
        f"| {describe(c)} | {c['parameters']:,} | {layout} | {ms_interval(c['ours'])} | {ms_interval(c['limit'])} "
        f"| {c['estimates_per_second']['ours']:,.0f} | {c['estimates_per_second']['limit']:,.0f} "
        f"| {r['median']:.2f}× [{fmt(r['lo'], 2)}, {fmt(r['hi'], 2)}] | {verdict} | {rss} |"
    )


def report(meta: dict[str, Any], results: list[dict[str, Any]]) -> list[str]:
    load = ", ".join(f"{v:.2f}" for v in meta["loadavg_start"]), ", ".join(f"{v:.2f}" for v in meta["loadavg_end"])
    level = f"{100 * meta['level']:g}%"
    lines = [
        "# Our engine against the limit (one forward and backward of the same K × n samples)",
        "",
        f"- started {meta['started_utc']} on `{meta['device_name']}` ({meta['cpu_count']} CPUs online, "
        f"{meta['cpus_available']} available); torch {meta['versions']['torch']} ({meta['threads']} thread(s)); "
        f"rpbench {meta['git_commit']}",
        f"- load average (1, 5, 15 min): start {load[0]}, end {load[1]}",
        f"- {meta['rounds']} interleaved calls a side (ours, limit; limit, ours; …), one warm-up each; "
        f"medians with their {level} order-statistic intervals; ratio: the median of the per-round ratios "
        "(ours ÷ limit in estimates/s); est/s = K / median",
        f"- ours: the chunks `rpbench run` draws at `--max-memory {meta['max_memory']}`; "
        "peak RSS: a full `rpbench run` cell in a fresh process (`-p reference=100`)",
        "",
        *TABLE_HEADER,
        *[table_row(c) for c in results],
        "",
        "Check (the same noise): K × the limit's gradient against the sum of our K estimates, largest "
        "difference relative to the largest |sum|:",
        "",
        *[f"- {c['id']}: {c['check']['max_rel']:.2g} (absolute {c['check']['max_abs']:.2g})" for c in results],
        "",
    ]
    with_rss = [c for c in results if c["rss"]]
    if with_rss:
        lines += ["| configuration | K | chunk | peak RSS (MiB) | wall (s) |", "|---|---:|---:|---:|---:|"]
        lines += [
            f"| {c['id']} | {x['samples']} | {x['chunk']} | {x['peak_mib']:.0f} | {x['wall_seconds']:.0f} |"
            for c in with_rss
            for x in c["rss"]
        ]
        lines.append("")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (both sides, and the peak-RSS runs)")
    parser.add_argument("--rounds", type=int, default=None, help="timed calls a side (default 10; --quick 3)")
    parser.add_argument("--level", type=float, default=0.95, help="level of the median and ratio intervals")
    parser.add_argument("--max-memory", default="512M", help="rpbench run's --max-memory (sets the chunks)")
    parser.add_argument("--only", nargs="*", default=[], help="configurations whose id contains one of these")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS subprocesses")
    parser.add_argument(
        "--glibc-defaults",
        action="store_true",
        help="leave malloc's thresholds alone (rpbench before it kept freed blocks; in-process sides only)",
    )
    parser.add_argument("--profile", action="store_true", help="print torch.profiler tables of both sides, no timing")
    parser.add_argument("--quick", action="store_true", help="smoke test: the defaults only, small K, 3 rounds")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "limit", help="folder for limit.md/.json")
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 3 if args.quick else 10
    max_memory = parse_memory(args.max_memory)
    load_builtins()
    torch.set_num_threads(args.threads)
    kept = False if args.glibc_defaults else keep_freed_blocks(max_memory)  # as rpbench.engine.draw_estimates does
    configs = [c for c in configurations(args.quick) if not args.only or any(s in c.id for s in args.only)]
    if not configs:
        parser.error("--only matched no configuration")
    if args.no_rss:
        for c in configs:
            c.rss = ()
    if args.profile:
        for config in configs:
            print(profile(config, max_memory))
        return 0
    started = datetime.datetime.now(datetime.UTC)
    load_start = os.getloadavg()
    results = []
    for config in configs:
        print(f"[bench-limit] {config.id} ...", file=sys.stderr, flush=True)
        results.append(measure(config, args, max_memory))
    meta = run_metadata({k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, CPU) | {
        "started_utc": started.isoformat(timespec="seconds"),
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "threads": torch.get_num_threads(),
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "rounds": args.rounds,
        "level": args.level,
        "max_memory": args.max_memory,
        "goal": GOAL,
        "keeps_freed_blocks": kept,
    }
    lines = report(meta, results)
    print("\n".join(lines))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "limit.md").write_text("\n".join(lines))
    (args.out / "limit.json").write_text(json.dumps({"meta": meta, "configurations": results}, indent=2) + "\n")
    print(f"wrote {args.out / 'limit.md'} and {args.out / 'limit.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
