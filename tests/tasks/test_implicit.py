"""The gamma and beta-dist tasks: closed forms against quadrature and Monte Carlo, the implicit
derivative against the CDF, the estimators that apply unbiased in both precisions (each check with
a deliberately wrong variant that fails it), the measured pathwise variance against its closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, special, stats

from rpbench.estimators.base import Estimator
from rpbench.registry import get_estimator, get_task
from rpbench.tasks.base import Task, Theta
from rpbench.tasks.implicit import (
    BETA_FUNCTIONS,
    GAMMA_FUNCTIONS,
    BetaTask,
    GammaTask,
    closed_form,
    implicit_sample,
    standard_gamma_draws,
)
from tests.conftest import CPU, DTYPES, ROUND_OFF_EPS, estimates, max_z_score

NUMPY_G = {"linear": lambda z, k: z, "quadratic": lambda z, k: (z - k) ** 2, "log": lambda z, k: np.log(z)}
GAMMA_POINTS = [(0.7, 1.5, 1.0), (3.0, 2.0, 0.5)]
BETA_POINTS = [(0.6, 2.0, 0.2), (3.0, 1.5, 0.9)]


def gamma(**config: object) -> Task:
    """A gamma task (defaults D=1, α=2, β=1, quadratic, k=1, float64) with overrides."""
    full = {"dim": 1, "alpha": 2.0, "beta": 1.0, "fn": "quadratic", "k": 1.0, "dtype": "float64", **config}
    return get_task("gamma")(full, CPU)


def beta_dist(**config: object) -> Task:
    """A beta-dist task (defaults D=1, a=2, b=2, quadratic, k=0.5, float64) with overrides."""
    full = {"dim": 1, "a": 2.0, "b": 2.0, "fn": "quadratic", "k": 0.5, "dtype": "float64", **config}
    return get_task("beta-dist")(full, CPU)


def gamma_density(alpha: float, beta: float):
    return stats.gamma(alpha, scale=1.0 / beta).pdf, (0.0, np.inf)


def beta_density(a: float, b: float):
    return stats.beta(a, b).pdf, (0.0, 1.0)


def by_quadrature(density_of, fn: str, p: float, q: float, k: float) -> float:
    density, (low, high) = density_of(p, q)
    integrand = lambda z: NUMPY_G[fn](z, k) * density(z)  # noqa: E731
    if high == np.inf:  # split at the mean: the log's singularity at 0 and the tail each on their own
        mean = p / q
        return integrate.quad(integrand, low, mean, limit=400)[0] + integrate.quad(integrand, mean, high, limit=400)[0]
    return integrate.quad(integrand, low, high, limit=400)[0]


FAMILIES = [
    pytest.param(GAMMA_FUNCTIONS, gamma_density, GAMMA_POINTS, id="gamma"),
    pytest.param(BETA_FUNCTIONS, beta_density, BETA_POINTS, id="beta-dist"),
]


@pytest.mark.parametrize(("functions", "density_of", "points"), FAMILIES)
@pytest.mark.parametrize("fn", ["linear", "quadratic", "log"])
def test_closed_forms_match_quadrature_and_its_finite_differences(functions, density_of, points, fn: str) -> None:
    h = 1e-5
    for p, q, k in points:
        value, (d_p, d_q) = closed_form(functions[fn], p, q, k)
        assert value == pytest.approx(by_quadrature(density_of, fn, p, q, k), abs=1e-8)
        fd_p = (by_quadrature(density_of, fn, p + h, q, k) - by_quadrature(density_of, fn, p - h, q, k)) / (2 * h)
        fd_q = (by_quadrature(density_of, fn, p, q + h, k) - by_quadrature(density_of, fn, p, q - h, k)) / (2 * h)
        assert (d_p, d_q) == pytest.approx((fd_p, fd_q), abs=1e-5)

        # and the closed form's own central differences (autograd of the same function)
        def closed(a: float, b: float, k: float = k) -> float:
            return closed_form(functions[fn], a, b, k)[0]

        assert d_p == pytest.approx((closed(p + h, q) - closed(p - h, q)) / (2 * h), abs=1e-7)
        assert d_q == pytest.approx((closed(p, q + h) - closed(p, q - h)) / (2 * h), abs=1e-7)


def test_known_values() -> None:
    # Gamma(α, β): ∂α E[log z] = ψ′(α); Gamma(1, 1): ψ′(1) = π²/6, E[log z] = −γ (Euler's constant).
    value, (d_alpha, d_beta) = closed_form(GAMMA_FUNCTIONS["log"], 1.0, 1.0, 0.0)
    assert value == pytest.approx(-0.5772156649015329) and d_alpha == pytest.approx(math.pi**2 / 6) and d_beta == -1
    # Beta(1, 1) is uniform: E[(z − k)²] = 1/3 − k + k²; ∂a E[z] = b/(a+b)² = 1/4.
    assert closed_form(BETA_FUNCTIONS["quadratic"], 1.0, 1.0, 0.5)[0] == pytest.approx(1 / 12)
    assert closed_form(BETA_FUNCTIONS["linear"], 1.0, 1.0, 0.0)[1] == pytest.approx((0.25, -0.25))


class GammaAsScale(GammaTask):
    """Deliberately wrong: β read as a scale (z = β z0), not a rate."""

    def sample(self, theta: Theta, noise: torch.Tensor) -> torch.Tensor:
        return implicit_sample(noise, theta["alpha"]) * theta["beta"]


def mean_z_score(task: Task, exact: float, samples: int = 200_000) -> float:
    """|mean f − exact| / SE over ``samples`` draws of the task's sampler."""
    z = task.sample(task.theta, task.noise(torch.Generator().manual_seed(5), (samples,)))
    f = task.objective(task.theta, z)
    return abs(float(f.mean()) - exact) / (float(f.std()) / math.sqrt(samples))


@pytest.mark.parametrize(
    ("make", "fn", "point"),
    [
        (gamma, "log", dict(alpha=0.7, beta=1.5)),
        (gamma, "quadratic", dict(alpha=3.0, beta=2.0, k=0.5)),
        (beta_dist, "log", dict(a=0.6, b=2.0)),
        (beta_dist, "quadratic", dict(a=3.0, b=1.5, k=0.9)),
    ],
)
def test_exact_value_matches_a_large_sample_mean(make, fn: str, point: dict) -> None:
    task = make(fn=fn, dim=2, **point)
    assert mean_z_score(task, task.exact_value()) < 4.0
    if make is gamma:  # the wrong sampler fails the same check
        assert mean_z_score(GammaAsScale(task.config, CPU), task.exact_value()) > 4.0


def implicit_derivative_by_the_cdf(alpha: float, z: np.ndarray) -> np.ndarray:
    """``−∂_α F(z | α) / q(z | α)`` for Gamma(α, 1), ∂_α by central differences of the regularized
    incomplete gamma function (scipy): independent of torch's approximation."""
    h = 1e-6 * alpha
    d_cdf = (special.gammainc(alpha + h, z) - special.gammainc(alpha - h, z)) / (2 * h)
    return -d_cdf / stats.gamma(alpha).pdf(z)


@pytest.mark.parametrize("alpha", [0.3, 1.0, 2.5, 20.0])
def test_the_implicit_derivative_is_minus_the_cdf_derivative_over_the_density(alpha: float) -> None:
    """Figurnov et al. (2018), §2–3.  torch's approximation is within 1e-3 relative per draw (measured
    ≤ 8e-4) and 1e-4 relative in the mean; the location derivative (dz/dα = 1) fails the check."""
    draws = standard_gamma_draws(torch.full((20_000,), alpha, dtype=torch.float64), torch.Generator().manual_seed(2))
    z, derivative = draws[..., 0].numpy(), draws[..., 1].numpy()
    expected = implicit_derivative_by_the_cdf(alpha, z)
    assert np.all(np.abs(derivative - expected) <= 1e-3 * np.abs(expected))
    assert abs(np.mean(derivative - expected)) <= 1e-4 * np.mean(np.abs(expected))
    assert not np.all(np.abs(1.0 - expected) <= 1e-3 * np.abs(expected))  # as if α were a location


def test_samples_follow_the_implicit_derivative_and_keep_the_draws_value() -> None:
    task = gamma(alpha=1.5, beta=2.0, dim=3)
    noise = task.noise(torch.Generator().manual_seed(0), (4,))
    assert noise.shape == (4, 3, 2)
    alpha = task.theta["alpha"].clone().requires_grad_(True)
    z = task.sample({"alpha": alpha, "beta": task.theta["beta"]}, noise)
    assert torch.equal(z.detach(), noise[..., 0] / 2.0)
    (d_alpha,) = torch.autograd.grad(z.sum(), alpha)
    torch.testing.assert_close(d_alpha, noise[..., 1].sum(0) / 2.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_prob_matches_scipy(dtype: str) -> None:
    tolerance = ROUND_OFF_EPS * torch.finfo(getattr(torch, dtype)).eps
    task = gamma(alpha=0.7, beta=1.5, dim=2, dtype=dtype)
    z = task.sample(task.theta, task.noise(torch.Generator().manual_seed(0), (7,)))
    expected = stats.gamma(0.7, scale=1 / 1.5).logpdf(z.double().numpy()).sum(-1, keepdims=True)
    got = task.log_prob(task.theta, z)
    assert got.shape == (7, 1) and got.dtype == task.dtype
    np.testing.assert_allclose(got.double().numpy(), expected, rtol=tolerance, atol=tolerance)
    task = beta_dist(a=0.6, b=2.0, dim=2, dtype=dtype)
    z = task.sample(task.theta, task.noise(torch.Generator().manual_seed(0), (7,)))
    expected = stats.beta(0.6, 2.0).logpdf(z.double().numpy()).sum(-1, keepdims=True)
    np.testing.assert_allclose(task.log_prob(task.theta, z).double().numpy(), expected, rtol=tolerance, atol=tolerance)


def test_float32_beta_draws_stay_inside_the_unit_interval() -> None:
    """Where X/(X+Y) rounds to 1 (a small b in float32) the value-only shift keeps log q finite."""
    task = beta_dist(a=2.0, b=0.05, dtype="float32")
    noise = task.noise(torch.Generator().manual_seed(0), (20_000,))
    gammas = noise[..., 0]
    assert bool((gammas[..., 0] / gammas.sum(-1) == 1.0).any()), "the case this guards against occurs"
    z = task.sample(task.theta, noise)
    assert bool(((z > 0) & (z < 1)).all()) and bool(torch.isfinite(task.log_prob(task.theta, z)).all())


@pytest.mark.parametrize("dtype", DTYPES)
def test_truth_is_float64_one_entry_per_dimension(dtype: str) -> None:
    cases = ((gamma(dim=3, fn="log", dtype=dtype), ("alpha", "beta")), (beta_dist(dim=3, dtype=dtype), ("a", "b")))
    for task, groups in cases:
        truth = task.exact_gradient()
        assert tuple(truth) == groups == tuple(task.theta)
        assert all(t.shape == (3,) and t.dtype == torch.float64 for t in truth.values())
        assert all(t.dtype == task.dtype for t in task.theta.values())
        one = closed_form(task.function, *task.values, task.k)
        assert task.exact_value() == 3 * one[0]
        assert [float(truth[g][0]) for g in groups] == list(one[1])


# -- estimators ------------------------------------------------------------------------------
UNBIASED = ["pathwise", "score", "score+loo", "score+opt", "score+ma"]
POINTS = [
    pytest.param(gamma, dict(alpha=0.7, beta=1.5, fn="quadratic", k=1.0), id="gamma-a0.7-quadratic"),
    pytest.param(gamma, dict(alpha=3.0, beta=2.0, fn="log"), id="gamma-a3-log"),
    pytest.param(beta_dist, dict(a=0.6, b=2.0, fn="quadratic", k=0.2), id="beta-a0.6-quadratic"),
    pytest.param(beta_dist, dict(a=3.0, b=1.5, fn="log"), id="beta-a3-log"),
]


def worst_z(task: Task, name: str, samples: int = 4000, batch: int = 2, **config: object) -> float:
    draws = estimates(task, name, samples, batch, **config)
    truth = task.exact_gradient()
    return max(max_z_score(draws[group], truth[group]) for group in truth)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("make", "point"), POINTS)
@pytest.mark.parametrize("name", UNBIASED)
def test_unbiased_within_4_se(name: str, make, point: dict, dtype: str) -> None:
    config = {"pilot": 256} if name == "score+opt" else {}
    assert worst_z(make(dim=2, dtype=dtype, **point), name, **config) < 4.0


class GammaWithoutImplicitDerivative(GammaTask):
    """Deliberately wrong: the sample drops the implicit α-derivative (pathwise ∂α is 0)."""

    def sample(self, theta: Theta, noise: torch.Tensor) -> torch.Tensor:
        return noise[..., 0] / theta["beta"]


class GammaAsLocation(GammaTask):
    """Deliberately wrong: ∂z/∂α computed as if α were a location (dz0/dα = 1)."""

    def sample(self, theta: Theta, noise: torch.Tensor) -> torch.Tensor:
        alpha = theta["alpha"]
        return (noise[..., 0] + (alpha - alpha.detach())) / theta["beta"]


class GammaWithoutNormalizer(GammaTask):
    """Deliberately wrong: log q without its −log Γ(α) (the score's α-term lacks −ψ(α))."""

    def log_prob(self, theta: Theta, z: torch.Tensor) -> torch.Tensor:
        alpha, beta = theta["alpha"], theta["beta"]
        return (alpha * torch.log(beta) + (alpha - 1.0) * torch.log(z) - beta * z).sum(-1, keepdim=True)


class BetaWithoutSecondDerivative(BetaTask):
    """Deliberately wrong: Y's implicit derivative dropped (pathwise ∂b sees only the value)."""

    def sample(self, theta: Theta, noise: torch.Tensor) -> torch.Tensor:
        x = implicit_sample(noise[..., 0, :], theta["a"])
        return x / (x + noise[..., 1, 0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("wrong", "name", "point"),
    [
        (GammaWithoutImplicitDerivative, "pathwise", dict(alpha=0.7, beta=1.5, fn="quadratic", k=1.0)),
        (GammaAsLocation, "pathwise", dict(alpha=0.7, beta=1.5, fn="quadratic", k=1.0)),
        (GammaWithoutNormalizer, "score", dict(alpha=3.0, beta=2.0, fn="log", k=1.0)),
        (BetaWithoutSecondDerivative, "pathwise", dict(a=0.6, b=2.0, fn="quadratic", k=0.2)),
    ],
)
def test_a_wrong_variant_fails_the_same_check(wrong: type[Task], name: str, point: dict, dtype: str) -> None:
    right = gamma if issubclass(wrong, GammaTask) else beta_dist
    config = right(dim=2, dtype=dtype, **point).config
    assert worst_z(wrong(config, CPU), name) > 4.0


@pytest.mark.parametrize("batch", [1, 3])
def test_pathwise_variance_of_the_rate_gradient_matches_its_closed_form(batch: int) -> None:
    """fn=linear: the per-sample pathwise ∂β of z0/β is −z0/β², so Var = α/(n β⁴) per coordinate;
    the sample variance's SE from the Gamma's excess kurtosis 6/(nα).  A wrong closed form (α/(n β³)) fails."""
    alpha, beta, samples = 1.5, 1.3, 20_000
    draws = estimates(gamma(alpha=alpha, beta=beta, fn="linear", dim=2), "pathwise", samples, batch)["beta"]
    measured = draws.var(0)
    expected = alpha / (batch * beta**4)
    se = expected * math.sqrt((2.0 + 6.0 / (batch * alpha)) / samples)
    assert bool(((measured - expected).abs() < 4 * se).all())
    assert bool(((measured - alpha / (batch * beta**3)).abs() > 4 * se).all())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("make", [gamma, beta_dist])
def test_copied_theta_and_vmap_give_the_same_pathwise_numbers(make, dtype: str) -> None:
    """broadcasts_theta: pathwise differentiates K copies of θ; the vmap path must agree."""
    task = make(dim=3, fn="log", dtype=dtype)
    assert task.broadcasts_theta
    per_lane = type("PerLane", (type(task),), {"broadcasts_theta": False})(task.config, CPU)
    estimator = get_estimator("pathwise")({})
    copied = estimator.estimate(task, 50, 4, torch.Generator().manual_seed(3))
    mapped = estimator.estimate(per_lane, 50, 4, torch.Generator().manual_seed(3))
    for group in task.theta:
        torch.testing.assert_close(copied[group], mapped[group])


@pytest.mark.parametrize("make", [gamma, beta_dist])
def test_the_same_seed_gives_the_same_numbers(make) -> None:
    task = make(dim=2)
    for name in ("pathwise", "score+loo"):
        first, again = estimates(task, name, 20, 2, seed=1), estimates(task, name, 20, 2, seed=1)
        other = estimates(task, name, 20, 2, seed=2)
        assert all(torch.equal(first[g], again[g]) for g in first)
        assert not any(torch.equal(first[g], other[g]) for g in first)


@pytest.mark.parametrize("make", [gamma, beta_dist])
@pytest.mark.parametrize("name", ["mvd", "score+delta", "pathwise+delta"])
def test_mvd_and_the_delta_method_are_refused_with_the_reason(make, name: str) -> None:
    cls: type[Estimator] = get_estimator(name)
    why = cls.why_not(make(), 2)
    assert why is not None and "gaussian (q_θ is a diagonal Gaussian" in why
    assert {"reparameterizable", "log-prob"} == make().capabilities
