"""The score-function (REINFORCE) estimator and its baseline control variates.

All share one surrogate per estimate, ``mean_i [f_θ(z_i) + stop_grad(f_θ(z_i) − b_i) log q_θ(z_i)]``
with ``z_i`` sampled and then detached, whose gradient is
``(1/n) Σ_i (f(z_i) − b_i) ∇θ log q_θ(z_i)`` (plus ``∇θ f`` where f depends on θ).  A baseline
``b_i`` that is independent of ``z_i`` keeps the estimate unbiased; they differ in where ``b``
comes from.
"""

from __future__ import annotations

import math

import torch
from torch.func import vmap

from rpbench.estimators.base import Estimator, per_estimate_gradients, tree_leaves, tree_map
from rpbench.params import ParamSpec, at_least, in_unit_interval
from rpbench.registry import register_estimator
from rpbench.tasks.base import Task, Theta


def score_surrogate(task: Task, theta: Theta, noise: torch.Tensor, baseline: torch.Tensor) -> torch.Tensor:
    """Surrogate whose gradient is the score-function estimate with ``baseline``.

    ``f`` and ``log q`` are ``(n, U)``; ``baseline`` broadcasts to that (``(U,)`` or ``(n, U)``).
    """
    z = task.sample(theta, noise).detach()
    f = task.objective(theta, z)
    return (f + (f.detach() - baseline) * task.log_prob(theta, z)).mean()


def score_estimates(task: Task, noise: torch.Tensor, baselines: torch.Tensor) -> Theta:
    """Score-function estimates for noise ``(K, n, ...)`` and per-lane baselines ``(K, U)`` or ``(K, n, U)``."""
    return per_estimate_gradients(lambda th, eps, b: score_surrogate(task, th, eps, b), task.theta, noise, baselines)


def objective_values(task: Task, noise: torch.Tensor) -> torch.Tensor:
    """``f(z)`` for noise of shape ``(K, n, ...)``, without gradients: shape ``(K, n, U)``."""
    with torch.no_grad():
        return vmap(lambda eps: task.objective(task.theta, task.sample(task.theta, eps)))(noise)


@register_estimator
class Score(Estimator):
    """Score-function estimator ``(1/n) Σ_i f(z_i) ∇θ log q_θ(z_i)``.

    Williams (1992), "Simple statistical gradient-following algorithms for connectionist
    reinforcement learning" (REINFORCE); Glynn (1990) (likelihood ratio); reviewed in Mohamed et
    al. (2020), JMLR 21(132), §4.
    """

    name = "score"
    summary = "score function / REINFORCE, no baseline"
    reference = "Williams 1992; Mohamed et al. 2020 §4"
    needs = frozenset({"log-prob"})

    def estimate(self, task: Task, samples: int, batch: int, generator: torch.Generator) -> Theta:
        noise = task.noise(generator, (samples, batch))
        return score_estimates(task, noise, torch.zeros(samples, 1, dtype=noise.dtype, device=noise.device))


def exponential_moving_average(values: torch.Tensor, decay: float, block: int = 64) -> torch.Tensor:
    """Along axis 0: ``e_t = decay · e_{t−1} + (1 − decay) · values_t`` with ``e_{−1} = values_0``, in float64.

    Computed block by block: inside a block ``e = M x + decay^{i+1} e_prev`` with the
    lower-triangular ``M_ij = (1 − decay) decay^{i−j}``, so the loop runs over blocks, not steps.
    """
    x = values.detach().to("cpu", torch.float64)
    steps = torch.arange(block, dtype=torch.float64)
    lags = steps[:, None] - steps[None, :]
    weights = torch.where(lags >= 0, (1.0 - decay) * decay ** lags.clamp_min(0), 0.0)
    carry_weights = decay ** (steps + 1)
    out = torch.empty_like(x)
    previous = x[0]
    for start in range(0, x.shape[0], block):
        chunk = x[start : start + block]
        n = chunk.shape[0]
        out[start : start + n] = (
            weights[:n, :n] @ chunk + carry_weights[:n].reshape(-1, *[1] * (x.dim() - 1)) * previous
        )
        previous = out[start + n - 1]
    return out.to(values.device, values.dtype)


@register_estimator
class ScoreMovingAverage(Estimator):
    """Score function with a moving-average baseline ``b_k = EMA_decay(mean f of estimates < k)``, per unit.

    Williams (1992) (reinforcement baseline); Mnih & Gregor (2014), "Neural Variational Inference
    and Learning in Belief Networks" (moving-average baseline).  The K estimates are drawn in
    stream order as in training: estimate k uses the average of the objective over estimates
    before it, so it stays unbiased and the estimates stay uncorrelated (martingale differences).
    A burn-in of ``ceil(5 / (1 − decay))`` discarded estimates precedes the K that are measured.
    """

    name = "score+ma"
    summary = "score function, exponential-moving-average baseline over previous estimates"
    reference = "Williams 1992; Mnih & Gregor 2014"
    needs = frozenset({"log-prob"})
    params = (ParamSpec("decay", float, 0.9, "EMA decay of the baseline", check=in_unit_interval),)

    def estimate(self, task: Task, samples: int, batch: int, generator: torch.Generator) -> Theta:
        decay = float(self.config["decay"])
        burn_in = max(1, math.ceil(5.0 / (1.0 - decay)))
        noise = task.noise(generator, (burn_in + samples, batch))
        stream = exponential_moving_average(objective_values(task, noise).mean(dim=1), decay)  # (burn_in + K, U)
        baselines = stream[burn_in - 1 : burn_in + samples - 1]  # EMA of estimates strictly before
        return score_estimates(task, noise[burn_in:], baselines)


@register_estimator
class ScoreOptimal(Estimator):
    """Score function with the variance-optimal constant baseline, per coordinate.

    ``b_j = E[f(z) s_j(z)²] / E[s_j(z)²]`` with ``s = ∇θ log q_θ(z)``, estimated once per cell from
    ``pilot`` independent samples (in :meth:`prepare`, untimed) and shared by all K estimates: each
    estimate stays unbiased, and given the baseline the K estimates are independent.  The estimate
    is ``mean_i f(z_i) s(z_i) − b ⊙ mean_i s(z_i)``.
    Greensmith, Bartlett & Baxter (2004), JMLR 5, "Variance reduction techniques for gradient
    estimates in reinforcement learning"; Mohamed et al. (2020), JMLR 21(132), §7.4.
    """

    name = "score+opt"
    summary = "score function, optimal constant baseline (per coordinate) from independent pilot samples"
    reference = "Greensmith et al. 2004; Mohamed et al. 2020 §7.4"
    needs = frozenset({"log-prob"})
    params = (ParamSpec("pilot", int, 1000, "independent samples that estimate the baseline", check=at_least(2)),)

    PILOT_VALUES = 2**25
    """Per-sample gradient values held at once while the pilot is reduced (bounds its memory)."""

    def prepare(self, task: Task, batch: int, generator: torch.Generator) -> None:
        """The baseline from ``pilot`` independent samples, once per cell (untimed: ``setup_seconds``).

        Per pilot sample, ``A = Σ_u f_u ∇log q_u`` and ``S = Σ_u ∇log q_u``; ``b_j = Σ A_j S_j / Σ S_j²``,
        with the sums accumulated over pilot chunks so that memory stays bounded for large models.
        """
        pilot = int(self.config["pilot"])
        params = sum(leaf.numel() for leaf in tree_leaves(task.theta))
        chunk = max(1, min(pilot, self.PILOT_VALUES // max(params, 1)))
        cross = tree_map(torch.zeros_like, task.theta)  # Σ A_j S_j
        squares = tree_map(torch.zeros_like, task.theta)  # Σ S_j²
        for start in range(0, pilot, chunk):
            noise = task.noise(generator, (min(chunk, pilot - start), 1))
            weighted = per_estimate_gradients(
                lambda th, eps: _score_sum(task, th, eps, weight_by_f=True), task.theta, noise
            )
            scores = per_estimate_gradients(
                lambda th, eps: _score_sum(task, th, eps, weight_by_f=False), task.theta, noise
            )
            cross = tree_map(lambda total, a, s: total + (a * s).sum(0), cross, weighted, scores)
            squares = tree_map(lambda total, s: total + (s**2).sum(0), squares, scores)
        self._baseline = tree_map(_optimal_baseline, cross, squares)
        self._prepared_for = task

    def estimate(self, task: Task, samples: int, batch: int, generator: torch.Generator) -> Theta:
        if getattr(self, "_prepared_for", None) is not task:  # called without the engine's prepare
            self.prepare(task, batch, generator)
        noise = task.noise(generator, (samples, batch))
        plain = score_estimates(task, noise, torch.zeros(samples, 1, dtype=noise.dtype, device=noise.device))
        mean_scores = per_estimate_gradients(
            lambda th, eps: task.log_prob(th, task.sample(th, eps).detach()).mean(), task.theta, noise
        )
        return tree_map(lambda g, b, s: g - b * s, plain, self._baseline, mean_scores)


def _optimal_baseline(cross: torch.Tensor, squares: torch.Tensor) -> torch.Tensor:
    """``Σ A S / Σ S²`` per coordinate; 0 where the score is identically zero (no score term)."""
    return torch.where(squares > 0, cross / squares.clamp_min(1e-300), 0.0)


def _score_sum(task: Task, theta: Theta, noise: torch.Tensor, weight_by_f: bool) -> torch.Tensor:
    """``Σ_u f_u log q_u`` (f held fixed) or ``Σ_u log q_u`` for one sample: gradients A and S."""
    z = task.sample(theta, noise).detach()
    log_q = task.log_prob(theta, z)
    if weight_by_f:
        log_q = task.objective(theta, z).detach() * log_q
    return log_q.sum()


def leave_one_out_surrogate(task: Task, theta: Theta, noise: torch.Tensor) -> torch.Tensor:
    """Score surrogate whose baseline for sample i is the mean of f over the other samples (per unit)."""
    z = task.sample(theta, noise).detach()
    f = task.objective(theta, z)
    n = f.shape[0]
    others = (f.detach().sum(0) - f.detach()) / (n - 1)
    return (f + (f.detach() - others) * task.log_prob(theta, z)).mean()


@register_estimator
class ScoreLeaveOneOut(Estimator):
    """Score function with the leave-one-out baseline: ``1/(n−1) Σ_i (f(z_i) − f̄) ∇θ log q(z_i)``.

    Kool, van Hoof & Welling (2019), "Buy 4 REINFORCE samples, get a baseline for free!"
    (ICLR workshop); also Mnih & Rezende (2016) (VIMCO-style leave-one-out).  Unbiased for
    n ≥ 2; meaningless for n = 1 (no other sample), which it refuses.
    """

    name = "score+loo"
    summary = "score function, leave-one-out baseline (RLOO); needs --batch >= 2"
    reference = "Kool, van Hoof & Welling 2019"
    needs = frozenset({"log-prob"})
    min_batch = 2

    def estimate(self, task: Task, samples: int, batch: int, generator: torch.Generator) -> Theta:
        noise = task.noise(generator, (samples, batch))
        return per_estimate_gradients(lambda th, eps: leave_one_out_surrogate(task, th, eps), task.theta, noise)
