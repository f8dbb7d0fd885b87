"""Relaxed estimators (rpbench.estimators.relaxed) against the enumerated gradient of small VAEs.

With logits α, Gumbel (categorical) or logistic (Bernoulli) noise g, and ``D = H(α + g)`` the
hard sample:

* Gumbel-Softmax / Concrete (Jang et al. 2017; Maddison et al. 2017): ``∇ f(softmax((α + g)/τ))``,
  biased for τ > 0, the bias falling and the variance growing as τ → 0;
* straight-through Gumbel-Softmax: f at D, the gradient through the relaxation; biased;
* Gumbel-Rao (Paulus et al. 2021): ST's backward averaged over M draws of g given D: the same
  expectation as ST, no more variance; with M = 1 the same distribution as ST.
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest
import torch
from torch.func import vjp

from rpbench.distributions import Bernoulli, Categorical
from rpbench.engine import estimate_all, flatten_groups
from rpbench.estimators.base import amortizer, per_estimate_gradients
from rpbench.estimators.relaxed import GumbelRao, GumbelSoftmax, StraightThroughGumbel, _straight_through
from rpbench.metrics import SIGNIFICANT_LEVEL, summarize
from rpbench.registry import ESTIMATORS, load_builtins
from rpbench.tasks.base import Task, Theta
from rpbench.truth import truth_of
from tests.conftest import bernoulli, categorical, estimates, vae

load_builtins()
RELAXED = ("gumbel", "st-gumbel", "gumbel-rao")


def encoder(task: Task, name: str, samples: int = 3000, batch: int = 2, **config: object) -> torch.Tensor:
    return flatten_groups(estimates(task, name, samples, batch=batch, **config))["encoder"]


def bias_lo(task: Task, values: torch.Tensor) -> float:
    """Lower end of the 4-SE bias interval of encoder estimates against the enumerated truth (0: unbiased)."""
    truth = truth_of(task)
    assert truth is not None and truth.kind == "enumeration"
    return summarize(values, truth.gradient["encoder"], [1.0], level=SIGNIFICANT_LEVEL)["bias_lo"]


def expectations_differ(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether the means of two sets of estimates differ beyond 4 SE (b's SE carried as a reference's)."""
    se = b.std(0) / b.shape[0] ** 0.5
    return summarize(a, b.mean(0), [1.0], level=SIGNIFICANT_LEVEL, exact_se=se)["bias_lo"] > 0.0


class UnconditionalGumbelRao(GumbelRao):
    """Deliberately wrong: the M relaxations use fresh noise, not noise drawn *given* the hard sample."""

    def estimate(self, task: Task, samples: int, batch: int, generator: torch.Generator) -> Theta:
        tau, draws = float(self.config["tau"]), int(self.config["m"])
        noise = task.noise(generator, (samples, batch))
        v = task.uniform(generator, (samples, batch, draws))
        fresh = -torch.log(-torch.log(v)) if task.latent is Categorical else torch.log(v) - torch.log1p(-v)

        def surrogate(theta: Theta, eps: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
            logits = task.logits(theta)
            hard = task.latent.hard(logits + eps).detach()
            soft = task.latent.soft(logits + g, tau).mean(1)
            return task.objective(theta, _straight_through(hard, soft)).mean()

        return per_estimate_gradients(surrogate, task.theta, noise, fresh, amortize=amortizer(task))


@pytest.mark.parametrize(("task", "name"), list(itertools.product([categorical, bernoulli], RELAXED)))
def test_each_is_biased_and_labelled_so(task, name: str) -> None:
    """The unbiasedness check that the unbiased estimators pass (tests/estimators/test_discrete.py) fails."""
    assert ESTIMATORS[name].biased
    assert bias_lo(task(), encoder(task(), name)) > 0.0


def test_the_relaxed_estimators_need_a_relaxable_task() -> None:
    gaussian_like = vae("vae", latents=2)
    for cls in (GumbelSoftmax, StraightThroughGumbel, GumbelRao):
        assert "relaxable" in (cls.why_not(gaussian_like, 1) or "")
        assert cls.why_not(categorical(), 1) is None and cls.why_not(bernoulli(), 1) is None


def test_gumbel_softmax_bias_falls_and_variance_grows_as_tau_falls() -> None:
    task = categorical()
    truth = truth_of(task)
    rows = []
    for tau in (2.0, 1.0, 0.5):
        values = flatten_groups(estimates(task, "gumbel", 4000, tau=tau))["encoder"]
        rows.append(summarize(values, truth.gradient["encoder"], [1.0]))
    for hotter, colder in itertools.pairwise(rows):
        assert colder["bias_hi"] < hotter["bias_lo"]  # less biased, beyond the CIs
        assert colder["variance_lo"] > hotter["variance_hi"]  # more variable, beyond the CIs
    assert rows[1]["bias_lo"] > 0  # biased at τ = 1
    assert rows[-1]["bias_lo"] > 0  # still biased at τ = 0.5


@pytest.mark.parametrize("latent", [Categorical, Bernoulli])
def test_straight_through_forwards_the_hard_sample_and_backwards_the_relaxation(latent) -> None:
    generator = torch.Generator().manual_seed(0)
    shape = (5, 2, 3) if latent is Categorical else (5, 4)
    z = latent.perturbation(generator, shape, torch.float64, torch.device("cpu")) + torch.randn(
        shape, generator=generator, dtype=torch.float64
    )
    cotangent = torch.randn(shape, generator=generator, dtype=torch.float64)
    tau = 0.7
    owner = SimpleNamespace(latent=latent)  # what `latent(task, z, tau)` reads of the task
    value, pullback = vjp(lambda t: StraightThroughGumbel.latent(owner, t, tau), z)
    _, soft_pullback = vjp(lambda t: GumbelSoftmax.latent(owner, t, tau), z)
    torch.testing.assert_close(value, latent.hard(z), rtol=0, atol=1e-12)  # hard + soft − soft: one-hot up to rounding
    torch.testing.assert_close(pullback(cotangent)[0], soft_pullback(cotangent)[0], rtol=1e-12, atol=1e-12)
    # and each half of the check can fail: Gumbel-Softmax's forward is the relaxation, not the hard
    # sample; the hard sample alone has no gradient
    assert not torch.allclose(GumbelSoftmax.latent(owner, z, tau), latent.hard(z), rtol=0, atol=1e-3)
    _, hard_pullback = vjp(latent.hard, z)
    assert not torch.allclose(hard_pullback(cotangent)[0], soft_pullback(cotangent)[0])


@pytest.mark.parametrize("task", [categorical, bernoulli])
def test_gumbel_rao_has_the_expectation_of_straight_through_and_less_variance(task) -> None:
    the_task = task()
    st = flatten_groups(estimates(the_task, "st-gumbel", 4000, tau=0.5))["encoder"]
    gr = flatten_groups(estimates(the_task, "gumbel-rao", 4000, tau=0.5, m=10))["encoder"]
    # ST's mean against GR's mean, with GR's standard error carried as that of a reference.
    se = gr.std(0) / gr.shape[0] ** 0.5
    same = summarize(st, gr.mean(0), [1.0], level=SIGNIFICANT_LEVEL, exact_se=se)
    assert same["bias_lo"] == 0.0
    st_row, gr_row = summarize(st, None, [1.0]), summarize(gr, None, [1.0])
    assert gr_row["variance_hi"] < st_row["variance_lo"]
    # and the check can fail: against the exact gradient, ST's mean differs (it is biased)
    exact = truth_of(the_task).gradient["encoder"]
    assert summarize(st, exact, [1.0], level=SIGNIFICANT_LEVEL)["bias_lo"] > 0.0
    # and so does a Gumbel-Rao whose M relaxations ignore the hard sample
    unconditional = estimate_all(the_task, UnconditionalGumbelRao({"tau": 0.5, "m": 10}), 4000, 2, seed=1)
    assert expectations_differ(unconditional["encoder"], gr)


@pytest.mark.parametrize("task", [categorical, bernoulli])
def test_gumbel_rao_with_one_draw_is_straight_through_in_distribution(task) -> None:
    """M = 1: (D, g | D) has the law of (D, g), so the mean and the variance are ST's."""
    the_task = task()
    st = encoder(the_task, "st-gumbel", 2000, batch=1, tau=0.5)
    gr = encoder(the_task, "gumbel-rao", 2000, batch=1, tau=0.5, m=1)
    assert not expectations_differ(st, gr)
    st_row, gr_row = summarize(st, None, [1.0]), summarize(gr, None, [1.0])
    assert gr_row["variance_lo"] < st_row["variance_hi"] and st_row["variance_lo"] < gr_row["variance_hi"]
    # and the check can fail: with M = 10 the variance is below ST's (the test above)
    more = encoder(the_task, "gumbel-rao", 2000, batch=1, tau=0.5, m=10)
    assert summarize(more, None, [1.0])["variance_hi"] < st_row["variance_lo"]


def test_gumbel_rao_declares_its_memory_per_draw() -> None:
    assert GumbelRao({"tau": 1.0, "m": 7}).memory_factor(categorical()) == 7.0
