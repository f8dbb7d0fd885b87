"""Worker for the optax.monte_carlo side of the Gaussian toy (JAX, ``jax.jit``-compiled, float32 or float64).

optax 0.2.5's ``pathwise_jacobians``, ``score_function_jacobians`` and ``measure_valued_jacobians``
(coupled) each return ``num_samples`` single-sample gradient estimates of ``E_{N(μ, σ²)}[f(x)]``
with respect to the parameters of ``optax.multi_normal(loc, log_scale)`` — the mean and the LOG
standard deviation.  rpbench's gaussian task reports ``∂/∂μ`` and ``∂/∂σ``, so the σ-row is
converted explicitly inside the compiled call: ``∂/∂σ = (∂/∂ log σ) / σ``.  (At σ = 1 the two agree;
the division stays so that the comparison is right at any σ.)

One timed ``run`` is one call of the jitted function (N estimates of both groups) and
``jax.block_until_ready`` on its outputs; the PRNG key is made before the clock starts.
Compilation happens in ``setup`` (a first call, then one more warm-up call), untimed.

Precision: one worker process per precision, named by ``--dtype`` (``RPBENCH_PEERS_DTYPE``).
float32 is JAX's default (``jax_enable_x64`` off); float64 turns ``jax_enable_x64`` on before
anything is traced.  The switch is global to the process (with x64 on, optax's
``jax.random.normal`` draws float64 even for float32 parameters), hence a worker each; a cell of
the other precision is refused.

Threads: the driver sets the process's CPU affinity and, for one thread,
``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1``; XLA sizes its
pools from the CPUs the process may use.

Started by ``scripts/bench_peers.py``; speaks :mod:`peer_protocol` on stdin/stdout.
"""

from __future__ import annotations

import os
import platform
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from optax import monte_carlo
from peer_protocol import KeepingWorker, affinity, serve

DTYPE = os.environ.get("RPBENCH_PEERS_DTYPE", "float64")
if DTYPE not in ("float32", "float64"):
    raise SystemExit(f"RPBENCH_PEERS_DTYPE={DTYPE!r}: expected float32 or float64")
jax.config.update("jax_enable_x64", DTYPE == "float64")
JNP_DTYPE = jnp.float64 if DTYPE == "float64" else jnp.float32

GROUPS = ("mu", "sigma")


def test_function(name: str, k: float) -> Callable[[jax.Array], jax.Array]:
    """``f(x) = Σ_d g(x_d)`` for one sample ``x`` of shape ``(D,)``, as rpbench's gaussian task defines it."""
    if name == "quadratic":
        return lambda x: jnp.sum((x - k) ** 2)
    if name == "cos":
        return lambda x: jnp.sum(jnp.cos(k * x))
    if name == "linear":
        return lambda x: jnp.sum(x)
    raise ValueError(f"no optax counterpart for fn={name!r}")


def compiled_estimator(estimator: str, f: Callable[[jax.Array], jax.Array], samples: int) -> Callable:
    """A jitted ``(params, key) -> (d/dμ (N, D), d/dσ (N, D))`` for one optax estimator."""
    builder = optax.multi_normal  # the object measure_valued_jacobians insists on

    def call(params: tuple[jax.Array, jax.Array], key: jax.Array) -> tuple[jax.Array, jax.Array]:
        if estimator == "pathwise":
            d_mu, d_log_sigma = monte_carlo.pathwise_jacobians(f, params, builder, key, samples)
        elif estimator == "score":
            d_mu, d_log_sigma = monte_carlo.score_function_jacobians(f, params, builder, key, samples)
        elif estimator == "mvd":
            d_mu, d_log_sigma = monte_carlo.measure_valued_jacobians(f, params, builder, key, samples, coupling=True)
        else:
            raise ValueError(f"no optax counterpart for estimator {estimator!r}")
        sigma = jnp.exp(params[1])
        return d_mu, d_log_sigma / sigma  # chain rule: d/dσ = (d/d log σ) / σ

    return jax.jit(call)


@dataclass
class Cell:
    """One compiled cell and the estimates its timed runs produced."""

    fn: Callable
    params: tuple[jax.Array, jax.Array]
    kept: dict[str, list[np.ndarray]] = field(default_factory=dict)


class OptaxWorker(KeepingWorker):
    """optax.monte_carlo estimators on rpbench's Gaussian toy."""

    def __init__(self) -> None:
        # optax.monte_carlo is deprecated since 0.2.4: every trace warns.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        super().__init__()
        self.cells: dict[str, Cell] = {}

    def info(self) -> dict[str, Any]:
        return {
            "python": platform.python_version(),
            "jax": jax.__version__,
            "jaxlib": version("jaxlib"),
            "optax": optax.__version__,
            "numpy": np.__version__,
            "jax_backend": jax.default_backend(),
            "jax_x64": bool(jax.config.jax_enable_x64),
            "dtype": DTYPE,
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
            "threads_requested": self.threads,
            "affinity": affinity(),
        }

    def setup(self, cell: dict[str, Any]) -> dict[str, Any]:
        config = cell["task_config"]
        if cell["task"] != "gaussian":
            raise ValueError("the optax worker only runs the gaussian task")
        if config.get("dtype", "float64") != DTYPE:
            raise ValueError(f"this optax worker runs {DTYPE}; the cell asks for {config.get('dtype', 'float64')}")
        dim = int(config["dim"])
        f = test_function(str(config["fn"]), float(config["k"]))
        fn = compiled_estimator(cell["estimator"], f, int(cell["samples"]))
        params = (
            jnp.full((dim,), float(config["mu"]), dtype=JNP_DTYPE),
            jnp.full((dim,), np.log(float(config["sigma"])), dtype=JNP_DTYPE),
        )
        started = time.perf_counter()
        first = jax.block_until_ready(fn(params, jax.random.PRNGKey(0)))
        compiled = time.perf_counter()
        if any(np.asarray(value).dtype != np.dtype(DTYPE) for value in first):
            raise RuntimeError(f"optax returned {[np.asarray(v).dtype for v in first]}, not {DTYPE}")
        jax.block_until_ready(fn(params, jax.random.PRNGKey(1)))
        warmed = time.perf_counter()
        self.cells[cell["id"]] = Cell(fn, params)
        return {"compile_seconds": compiled - started, "warmup_seconds": warmed - compiled, "dtype": DTYPE}

    def run(self, cell_id: str, seed: int) -> float:
        cell = self.cells[cell_id]
        key = jax.block_until_ready(jax.random.PRNGKey(seed))
        started = time.perf_counter()
        out = jax.block_until_ready(cell.fn(cell.params, key))
        seconds = time.perf_counter() - started
        for group, value in zip(GROUPS, out, strict=True):
            array = np.asarray(value)
            cell.kept.setdefault(group, []).append(array.reshape(array.shape[0], -1))
        return seconds


if __name__ == "__main__":
    serve(OptaxWorker(), "optax")
