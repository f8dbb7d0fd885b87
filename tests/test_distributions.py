"""The discrete latent families: perturbation noise, hard thresholds, probabilities and conditionals."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from rpbench.distributions import Bernoulli, Categorical

CPU = torch.device("cpu")
F64 = torch.float64
N = 100_000
EULER_GAMMA = 0.5772156649015329
Family = type[Categorical] | type[Bernoulli]

# Fixed logits of shape (L, C) = (2, 3) and (L,) = (3,): a spread of probabilities, none degenerate.
LOGITS = {
    Categorical: torch.tensor([[0.5, -1.0, 1.5], [0.0, 2.0, -0.5]], dtype=F64),
    Bernoulli: torch.tensor([-1.5, 0.3, 2.0], dtype=F64),
}
FAMILIES = pytest.mark.parametrize("family", [Categorical, Bernoulli], ids=["categorical", "bernoulli"])


def probabilities(family: Family, logits: torch.Tensor) -> torch.Tensor:
    """P(b = 1) per coordinate: softmax over classes, or the sigmoid."""
    return torch.softmax(logits, -1) if family is Categorical else torch.sigmoid(logits)


def noise_moments(family: Family, logits: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Mean and standard deviation of ``logits + noise``: Gumbel(α, 1) or Logistic(φ, 1)."""
    if family is Categorical:
        return logits + EULER_GAMMA, math.pi / math.sqrt(6.0)
    return logits, math.pi / math.sqrt(3.0)


def draw_hard(family: Family, logits: torch.Tensor, samples: int, generator: torch.Generator) -> torch.Tensor:
    """``samples`` hard samples ``b = hard(logits + noise)``."""
    noise = family.perturbation(generator, (samples, *logits.shape), logits.dtype, CPU)
    return family.hard(logits + noise)


def uniform(shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype = F64) -> torch.Tensor:
    """Uniform noise in (0, 1), clamped like the tasks' ``uniform``."""
    return torch.rand(*shape, generator=generator, dtype=dtype).clamp(1e-12, 1 - 1e-7)


# -- perturbation noise ----------------------------------------------------------------------------
@pytest.mark.parametrize(("family", "law"), [(Categorical, "gumbel_r"), (Bernoulli, "logistic")])
def test_perturbation_has_the_standard_law(family: Family, law: str) -> None:
    generator = torch.Generator().manual_seed(1)
    noise = family.perturbation(generator, (N,), F64, CPU).numpy()
    assert noise.shape == (N,)
    assert stats.kstest(noise, law).pvalue > 1e-3
    # The test has power: the same sample is far from a standard normal and from a shifted law.
    assert stats.kstest(noise, "norm").pvalue < 1e-3
    assert stats.kstest(noise, law, args=(0.05,)).pvalue < 1e-3


# -- hard thresholds -------------------------------------------------------------------------------
def test_categorical_hard_is_the_one_hot_argmax() -> None:
    z = torch.randn(5, 4, 6, generator=torch.Generator().manual_seed(2))
    hard = Categorical.hard(z)
    assert hard.dtype == z.dtype
    assert torch.equal(hard, F.one_hot(z.argmax(-1), 6).to(z.dtype))


def test_categorical_hard_works_under_vmap() -> None:
    z = torch.randn(5, 4, 6, generator=torch.Generator().manual_seed(3))
    assert torch.equal(torch.func.vmap(Categorical.hard)(z), Categorical.hard(z))
    # Batched over an inner dimension, and nested.
    assert torch.equal(torch.func.vmap(Categorical.hard, in_dims=1, out_dims=1)(z), Categorical.hard(z))
    assert torch.equal(torch.func.vmap(torch.func.vmap(Categorical.hard))(z), Categorical.hard(z))


def test_bernoulli_hard_is_the_indicator_of_a_positive_logit() -> None:
    z = torch.tensor([-2.0, -1e-9, 0.0, 1e-9, 3.0], dtype=F64)
    hard = Bernoulli.hard(z)
    assert hard.dtype == F64
    assert torch.equal(hard, torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0], dtype=F64))
    assert torch.equal(torch.func.vmap(Bernoulli.hard)(z.reshape(5, 1)), hard.reshape(5, 1))


@FAMILIES
def test_sampling_frequencies_match_the_probabilities(family: Family) -> None:
    logits = LOGITS[family]
    frequency = draw_hard(family, logits, N, torch.Generator().manual_seed(4)).mean(0)
    p = probabilities(family, logits)
    se = torch.sqrt(p * (1 - p) / N)
    assert ((frequency - p).abs() <= 4 * se).all()
    # A wrong law (the logits at temperature 2) is rejected by the same tolerance.
    wrong = probabilities(family, logits / 2)
    assert ((frequency - wrong).abs() > 4 * se).any()


# -- log-probability and KL ------------------------------------------------------------------------
def test_categorical_log_prob_and_kl_match_torch() -> None:
    generator = torch.Generator().manual_seed(5)
    logits = 2 * torch.randn(4, 3, 5, 6, generator=generator, dtype=F64)  # (..., L=5, C=6)
    b = F.one_hot(torch.randint(0, 6, (4, 3, 5), generator=generator), 6).to(F64)
    q = torch.distributions.OneHotCategorical(logits=logits)
    log_prob = Categorical.log_prob(logits, b)
    assert log_prob.shape == (4, 3)
    assert torch.allclose(log_prob, q.log_prob(b).sum(-1))
    uniform_prior = torch.distributions.OneHotCategorical(logits=torch.zeros_like(logits))
    kl = Categorical.kl_to_uniform(logits)
    assert kl.shape == (4, 3)
    assert torch.allclose(kl, torch.distributions.kl_divergence(q, uniform_prior).sum(-1))
    assert torch.allclose(Categorical.kl_to_uniform(torch.full((2, 5, 6), 0.7, dtype=F64)), torch.zeros(2, dtype=F64))


def test_bernoulli_log_prob_and_kl_match_torch() -> None:
    generator = torch.Generator().manual_seed(6)
    logits = 3 * torch.randn(4, 3, 7, generator=generator, dtype=F64)  # (..., L=7)
    b = torch.randint(0, 2, (4, 3, 7), generator=generator).to(F64)
    q = torch.distributions.Bernoulli(logits=logits)
    log_prob = Bernoulli.log_prob(logits, b)
    assert log_prob.shape == (4, 3)
    assert torch.allclose(log_prob, q.log_prob(b).sum(-1))
    half = torch.distributions.Bernoulli(probs=torch.full_like(logits, 0.5))
    kl = Bernoulli.kl_to_uniform(logits)
    assert kl.shape == (4, 3)
    assert torch.allclose(kl, torch.distributions.kl_divergence(q, half).sum(-1))
    assert torch.allclose(Bernoulli.kl_to_uniform(torch.zeros(2, 7, dtype=F64)), torch.zeros(2, dtype=F64))


# -- conditional perturbations ---------------------------------------------------------------------
@FAMILIES
def test_conditional_reproduces_the_hard_sample(family: Family) -> None:
    generator = torch.Generator().manual_seed(7)
    shape = (4, 5) if family is Categorical else (20,)
    logits = 3 * torch.randn(*shape, generator=generator, dtype=F64)
    b = draw_hard(family, logits, 20_000, generator)
    v = uniform(tuple(b.shape), generator)
    z = family.conditional(logits, b, v)
    assert torch.isfinite(z).all()
    assert torch.equal(family.hard(z), b)
    # A wrong conditional that ignores b (fresh perturbed logits) fails the same check.
    wrong = logits + family.perturbation(generator, tuple(b.shape), F64, CPU)
    assert (family.hard(wrong) != b).any()


@FAMILIES
def test_conditional_has_the_law_of_the_perturbed_logits(family: Family) -> None:
    """Draw b ~ q, then z̃ ~ p(z | b): marginally z̃ ~ logits + noise (mean, sd and KS per coordinate)."""
    generator = torch.Generator().manual_seed(8)
    logits = LOGITS[family]
    b = draw_hard(family, logits, N, generator)
    z = family.conditional(logits, b, uniform(tuple(b.shape), generator)).reshape(N, -1)
    direct = (logits + family.perturbation(generator, (N, *logits.shape), F64, CPU)).reshape(N, -1)
    mean, sd = noise_moments(family, logits)
    assert within_4_se(z, mean.reshape(-1), sd)
    for j in range(z.shape[1]):
        assert stats.ks_2samp(z[:, j].numpy(), direct[:, j].numpy()).pvalue > 1e-3
    # The same checks reject a conditional given b from the wrong law (logits at temperature 2).
    wrong_b = draw_hard(family, logits / 2, N, generator)
    wrong = family.conditional(logits, wrong_b, uniform(tuple(b.shape), generator)).reshape(N, -1)
    assert not within_4_se(wrong, mean.reshape(-1), sd)
    assert min(stats.ks_2samp(wrong[:, j].numpy(), direct[:, j].numpy()).pvalue for j in range(z.shape[1])) < 1e-3


def within_4_se(z: torch.Tensor, mean: torch.Tensor, sd: float) -> bool:
    """Whether each column's sample mean and standard deviation lie within 4 SE of ``mean``, ``sd``.

    SE of the mean is s/√N; SE of the sample sd is s·√((m₄/s⁴ − 1)/(4N)) (delta method, with the
    sample kurtosis m₄/s⁴).
    """
    n = z.shape[0]
    sample_mean, sample_sd = z.mean(0), z.std(0)
    kurtosis = ((z - sample_mean) ** 4).mean(0) / sample_sd**4
    se_mean = sample_sd / math.sqrt(n)
    se_sd = sample_sd * torch.sqrt((kurtosis - 1) / (4 * n))
    return bool(((sample_mean - mean).abs() <= 4 * se_mean).all() and ((sample_sd - sd).abs() <= 4 * se_sd).all())


@FAMILIES
def test_conditional_is_differentiable_in_the_logits(family: Family) -> None:
    generator = torch.Generator().manual_seed(9)
    logits = LOGITS[family].clone().requires_grad_(True)
    b = draw_hard(family, logits.detach(), 16, generator)
    v = uniform(tuple(b.shape), generator).clamp(1e-3, 1 - 1e-3)  # away from the clamps, for finite differences
    (gradient,) = torch.autograd.grad(family.conditional(logits, b, v).sum(), logits)
    assert gradient.shape == logits.shape
    assert torch.isfinite(gradient).all() and gradient.abs().sum() > 0
    assert torch.autograd.gradcheck(lambda x: family.conditional(x, b, v), (logits,))


def test_bernoulli_conditional_keeps_the_sign_in_float32() -> None:
    """b = 1 with v near 0: the naive u ≈ fl(1 − σ(φ)) would give z̃ = φ + logit(u) slightly below 0."""
    logits = torch.tensor([3.0, 4.759002685546875, -1.0240812301635742])
    b = torch.ones(3)
    v = torch.tensor([1e-12, 1e-12, 1.1920928955078125e-07])
    assert torch.equal(Bernoulli.hard(Bernoulli.conditional(logits, b, v)), b)
