"""VIMCO: unbiased for the enumerated bound, its leave-one-out signal in closed form, what it refuses.

The wrong variant that must fail: a signal whose left-out estimate still contains particle m's own
weight (the mean of all M log weights in its place) is correlated with ``z_m``, so it is biased.
"""

from __future__ import annotations

import math

import pytest
import torch

import rpbench.estimators.vimco as vimco
from rpbench.distributions import log_mean_exp
from rpbench.metrics import SIGNIFICANT_LEVEL, summarize
from rpbench.registry import ESTIMATORS, get_estimator, load_builtins
from rpbench.truth import truth_of
from tests.conftest import assert_one_estimate_is_lane_zero, estimates, gaussian, vae

load_builtins()


def bound_task(name: str, dtype: str = "float64", particles: int = 3):
    config = {"latents": 2, "categories": 3} if name == "discrete-vae" else {"latents": 3}
    return vae(name, minibatch=2, particles=particles, dtype=dtype, **config)


def bias_lo(task, samples: int = 4000, batch: int = 2) -> dict[str, float]:
    truth = truth_of(task)
    assert truth is not None and truth.kind == "enumeration"
    draws = {g: v.reshape(v.shape[0], -1) for g, v in _flat(estimates(task, "vimco", samples, batch=batch)).items()}
    return {g: summarize(v, truth.gradient[g], [1.0], level=SIGNIFICANT_LEVEL)["bias_lo"] for g, v in draws.items()}


def _flat(theta):
    from rpbench.engine import flatten_groups

    return flatten_groups(theta)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["discrete-vae", "bernoulli-vae"])
def test_unbiased_for_the_enumerated_bound(name: str, dtype: str) -> None:
    assert bias_lo(bound_task(name, dtype)) == {"encoder": 0.0, "decoder": 0.0}


def own_weight_signals(log_w: torch.Tensor) -> torch.Tensor:
    """Wrong: particle m's weight replaced by the geometric mean of *all* M weights, its own included."""
    log_w = log_w.detach()
    particles = log_w.shape[-1]
    replaced = torch.where(
        torch.eye(particles, dtype=torch.bool), log_w.mean(-1, keepdim=True).unsqueeze(-1), log_w.unsqueeze(-2)
    )
    return log_mean_exp(log_w).unsqueeze(-1) - log_mean_exp(replaced)


def test_a_signal_that_keeps_the_particles_own_weight_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vimco, "vimco_signals", own_weight_signals)
    assert bias_lo(bound_task("discrete-vae"))["encoder"] > 0.0


def test_with_two_particles_each_signal_leaves_the_other_weight_alone() -> None:
    """M = 2: the geometric mean of the other weight is that weight, so ``L̂_{−1} = log w_2``."""
    log_w = torch.tensor([[-3.0, -1.5], [0.2, 4.0]], dtype=torch.float64)
    bound = torch.logsumexp(log_w, -1, keepdim=True) - math.log(2)
    torch.testing.assert_close(vimco.vimco_signals(log_w), bound - log_w.flip(-1))


def test_signals_by_hand_for_three_particles() -> None:
    log_w = torch.tensor([-2.0, 0.5, -0.7], dtype=torch.float64)
    w = log_w.exp()
    expected = []
    for m in range(3):
        others = [j for j in range(3) if j != m]
        geometric = math.exp(sum(float(log_w[j]) for j in others) / 2)
        left_out = math.log((sum(float(w[j]) for j in others) + geometric) / 3)
        expected.append(math.log(float(w.sum()) / 3) - left_out)
    torch.testing.assert_close(vimco.vimco_signals(log_w), torch.tensor(expected, dtype=torch.float64))


def test_refused_with_one_particle_and_without_a_bound() -> None:
    cls = get_estimator("vimco")
    assert "particles >= 2" in (cls.why_not(bound_task("discrete-vae", particles=1), 1) or "")
    assert "importance-weighted" in (cls.why_not(gaussian(), 1) or "")
    assert cls.why_not(bound_task("bernoulli-vae", particles=2), 1) is None
    assert cls.why_not(vae("vae", particles=2), 1) is None  # continuous latents too: a score function


def test_one_estimate_is_lane_zero_of_many() -> None:
    assert_one_estimate_is_lane_zero(bound_task("bernoulli-vae"), ESTIMATORS["vimco"]({}))


def test_lower_variance_than_the_plain_score_function_of_the_bound() -> None:
    """The point of the signals (Mnih & Rezende 2016): far below REINFORCE of the whole bound."""
    task = bound_task("discrete-vae", particles=5)
    variance = {}
    for name in ("vimco", "score"):
        draws = _flat(estimates(task, name, 2000, batch=1))["encoder"]
        variance[name] = summarize(draws, None, [1.0])
    assert variance["vimco"]["variance_hi"] < variance["score"]["variance_lo"] / 10
