"""ARM and DisARM (rpbench.estimators.arm) against the enumerated gradient of a small Bernoulli VAE.

With logits φ and ``u ~ U(0, 1)`` per latent, the antithetic pair is ``b⁺ = 1[u > σ(−φ)]``,
``b⁻ = 1[u < σ(φ)]`` (each marginally ``Bern(σ(φ))``), and

* ARM (Yin & Zhou 2019): ``∂/∂φ_d = (f(b⁺) − f(b⁻)) (u_d − ½)``;
* DisARM (Dong, Mnih & Tucker 2020): ``∂/∂φ_d = ½ (f(b⁺) − f(b⁻)) (−1)^{b⁻_d} 1[b⁺_d ≠ b⁻_d] σ(|φ_d|)``,
  ARM with u integrated out given the pair.

Both are unbiased; each check below is also failed by a deliberately wrong variant.
"""

from __future__ import annotations

import torch
from torch.func import functional_call

from rpbench.engine import flatten_groups
from rpbench.estimators.arm import ARM, DisARM
from rpbench.estimators.base import Estimator
from rpbench.metrics import summarize
from tests.conftest import bernoulli, bias_lo, estimates, vae


def arm_bias_lo(estimator: Estimator) -> dict[str, float]:
    """:func:`tests.conftest.bias_lo` on the Bernoulli VAE, at this module's seed."""
    return bias_lo(bernoulli(), estimator, seed=5)


class FlippedARM(ARM):
    """Deliberately wrong: the antithetic difference taken the other way round, ``(f(b⁻) − f(b⁺))(u − ½)``."""

    @staticmethod
    def logit_gradient(f_plus, f_minus, b_plus, b_minus, noise, logits):
        return ARM.logit_gradient(f_minus, f_plus, b_plus, b_minus, noise, logits)


class UnweightedDisARM(DisARM):
    """Deliberately wrong: DisARM without its ``σ(|φ|)`` weight."""

    @staticmethod
    def logit_gradient(f_plus, f_minus, b_plus, b_minus, noise, logits):
        return DisARM.logit_gradient(f_plus, f_minus, b_plus, b_minus, noise, logits) / torch.sigmoid(logits.abs())


def paper_logit_gradient(name: str, f_plus, f_minus, b_plus, b_minus, u, logits) -> torch.Tensor:
    """The papers' expressions, written from u (not from the logistic noise the estimator draws)."""
    difference = (f_plus - f_minus).unsqueeze(-1)
    if name == "arm":
        return difference * (u - 0.5)
    return 0.5 * difference * torch.where(b_minus > 0, -1.0, 1.0) * (b_plus != b_minus) * torch.sigmoid(logits.abs())


def test_each_is_unbiased_and_a_wrong_variant_is_not() -> None:
    for estimator in (ARM(), DisARM()):
        assert arm_bias_lo(estimator) == {"encoder": 0.0, "decoder": 0.0}, estimator.name
    assert arm_bias_lo(FlippedARM())["encoder"] > 0.0
    assert arm_bias_lo(UnweightedDisARM())["encoder"] > 0.0


def matches_the_paper(estimator: Estimator, name: str, samples: int = 4, batch: int = 3) -> bool:
    """Whether every estimate equals ``Jᵀ mean ĝ_φ`` (J = ∂φ/∂encoder, ĝ_φ the paper's ``name``) plus
    the gradient of ``½ mean (f(b⁺) + f(b⁻))``, on the same noise.

    The second term is the decoder's estimate; for the encoder it is the KL's gradient (f depends on
    the encoder through the KL term as well as through the sample).
    """
    task = bernoulli()
    got = flatten_groups(estimator.estimate(task, samples, batch, torch.Generator().manual_seed(2)))
    noise = task.noise(torch.Generator().manual_seed(2), (samples, batch))  # logistic: logit(u)
    u = torch.sigmoid(noise)
    model = {group: {k: v.detach().requires_grad_(True) for k, v in p.items()} for group, p in task.theta.items()}
    encoder, decoder = list(model["encoder"].values()), list(model["decoder"].values())
    logits = functional_call(task.encoder, model["encoder"], (task.x,))  # (U, L)
    for k in range(samples):
        b_plus = (u[k] > torch.sigmoid(-logits.detach())).to(logits.dtype)
        b_minus = (u[k] < torch.sigmoid(logits.detach())).to(logits.dtype)
        f_plus, f_minus = task.objective(model, b_plus), task.objective(model, b_minus)  # (n, U)
        g = paper_logit_gradient(name, f_plus.detach(), f_minus.detach(), b_plus, b_minus, u[k], logits)
        units = f_plus.numel()  # n·U: the loss is a mean over units, the estimate a mean over n samples
        direct = torch.autograd.grad(0.5 * (f_plus + f_minus).sum() / units, encoder + decoder, retain_graph=True)
        through_logits = torch.autograd.grad(logits, encoder, g.sum(0) / units, retain_graph=True)
        expected = {
            "encoder": [d + t for d, t in zip(direct[: len(encoder)], through_logits, strict=True)],
            "decoder": direct[len(encoder) :],
        }
        for group, tensors in expected.items():
            if not torch.allclose(got[group][k], torch.cat([t.reshape(-1) for t in tensors]), rtol=1e-4, atol=1e-6):
                return False
    return True


def test_each_equals_its_papers_expression_on_the_same_noise() -> None:
    assert matches_the_paper(ARM(), "arm")
    assert matches_the_paper(DisARM(), "disarm")
    assert not matches_the_paper(FlippedARM(), "arm")
    assert not matches_the_paper(UnweightedDisARM(), "disarm")
    assert not matches_the_paper(ARM(), "disarm")  # the two are different estimators on the same noise


def test_disarm_variance_is_below_arm() -> None:
    task = bernoulli()
    arm = summarize(flatten_groups(estimates(task, "arm", 4000))["encoder"], None, [1.0])
    disarm = summarize(flatten_groups(estimates(task, "disarm", 4000))["encoder"], None, [1.0])
    assert disarm["variance_hi"] < arm["variance_lo"]


def test_both_declare_what_they_need() -> None:
    assert ARM.needs == DisARM.needs == frozenset({"bernoulli"})
    assert not ARM.biased and not DisARM.biased
    assert ARM.why_not(vae("discrete-vae", latents=2, categories=3), 1) is not None  # categorical: no
