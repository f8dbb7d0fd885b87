"""The Bernoulli toy: its truth against finite differences and enumeration, every Bernoulli estimator
against the truth, and the closed-form variances of score, ARM and DisARM against independent
quadrature and against the measured variances (each check with a wrong variant that fails it)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from rpbench.distributions import Bernoulli
from rpbench.metrics import SIGNIFICANT_LEVEL, summarize
from rpbench.registry import ESTIMATORS, get_task, load_builtins
from rpbench.tasks.base import Task
from rpbench.tasks.bernoulli_toy import (
    CLOSED_FORM_VARIANCES,
    arm_variance,
    disarm_variance,
    exact_gradient_per_coordinate,
    score_variance,
)
from rpbench.tasks.protocols import BernoulliLatent
from tests.conftest import CPU, DTYPES, estimates, max_z_score, round_off

load_builtins()

POINTS = [(1, 0.45, 0.0), (3, 0.499, 0.7)]
"""(dim, t, logit) where every unbiased estimator is checked: Tucker's and Grathwohl's settings."""
FAST = {"rebar": {"tune_steps": 20}, "relax": {"tune_steps": 20}}
"""Shorter tuning of the learned control variates (unbiased whatever their parameters)."""


def toy(dim: int = 1, t: float = 0.45, logit: float = 0.0, dtype: str = "float64") -> Task:
    return get_task("bernoulli-toy")({"dim": dim, "t": t, "logit": logit, "dtype": dtype}, CPU)


# -- the truth ---------------------------------------------------------------------------------------
def enumerated(dim: int, t: float, logit: float) -> tuple[float, torch.Tensor]:
    """``Σ_b P_φ(b) f(b)`` over the 2^D states and its autograd gradient in φ, independently of the task."""
    phi = torch.full((dim,), logit, dtype=torch.float64, requires_grad=True)
    q = torch.distributions.Bernoulli(logits=phi)
    total = torch.zeros((), dtype=torch.float64)
    for state in itertools.product((0.0, 1.0), repeat=dim):
        b = torch.tensor(state, dtype=torch.float64)
        total = total + q.log_prob(b).sum().exp() * ((b - t) ** 2).sum()
    (gradient,) = torch.autograd.grad(total, phi)
    return float(total.detach()), gradient


@pytest.mark.parametrize(("dim", "t", "logit"), [*POINTS, (2, 0.3, -1.2), (4, 0.6, 2.5), (1, 0.499, -30.0)])
def test_exact_value_and_gradient_match_enumeration_and_finite_differences(dim: int, t: float, logit: float) -> None:
    task = toy(dim, t, logit)
    value, gradient = enumerated(dim, t, logit)
    exact = task.exact_gradient()["logits"]
    assert exact.dtype == torch.float64 and exact.shape == (dim,)
    assert task.exact_value() == pytest.approx(value, rel=1e-12)
    torch.testing.assert_close(exact, gradient, rtol=1e-10, atol=1e-300)
    h = 1e-5  # φ moves in every coordinate at once: the value changes by D times one coordinate's slope
    slope = (toy(dim, t, logit + h).exact_value() - toy(dim, t, logit - h).exact_value()) / (2 * h)
    assert slope == pytest.approx(dim * float(exact[0]), rel=1e-6, abs=1e-12)


def test_a_wrong_gradient_fails_the_same_checks() -> None:
    """The sign of 1 − 2t and the factor σ(φ)σ(−φ) both matter: dropping either is caught."""
    dim, t, logit = 2, 0.3, 0.8
    _, gradient = enumerated(dim, t, logit)
    p = 1.0 / (1.0 + math.exp(-logit))
    for wrong in ((2 * t - 1) * p * (1 - p), (1 - 2 * t) * p, (1 - 2 * t)):
        assert not torch.allclose(torch.full((dim,), wrong, dtype=torch.float64), gradient, rtol=1e-3)
    assert exact_gradient_per_coordinate(t, logit) == pytest.approx(float(gradient[0]), rel=1e-12)


def test_the_gradient_points_away_from_the_minimiser() -> None:
    """For t < ½ the minimum is at b = 0 (φ → −∞): the gradient is positive, so descent lowers φ."""
    assert float(toy(t=0.45).exact_gradient()["logits"][0]) == pytest.approx(0.1 / 4)
    assert float(toy(t=0.55).exact_gradient()["logits"][0]) == pytest.approx(-0.1 / 4)
    assert float(toy(t=0.5).exact_gradient()["logits"][0]) == 0.0


# -- the task's contract -----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_shapes_precision_and_the_bernoulli_protocol(dtype: str) -> None:
    task = toy(dim=3, t=0.45, logit=0.7, dtype=dtype)
    assert isinstance(task, BernoulliLatent) and task.latent is Bernoulli
    assert task.capabilities == {"log-prob", "relaxable", "bernoulli"}
    assert task.latent_shape == (1, 3) and task.event_dims == 1
    assert task.theta["logits"].dtype == task.dtype == getattr(torch, dtype)
    noise = task.noise(torch.Generator().manual_seed(0), (5, 2))
    assert noise.shape == (5, 2, 1, 3) and noise.dtype == task.dtype
    b = task.sample(task.theta, noise)
    assert set(b.unique().tolist()) <= {0.0, 1.0} and not b.requires_grad
    assert task.log_prob(task.theta, b).shape == task.objective(task.theta, b).shape == (5, 2, 1)
    relaxed = task.latent.soft(task.perturb(task.theta, noise), 0.5)  # REBAR, RELAX and Gumbel evaluate f here
    torch.testing.assert_close(task.objective(task.theta, relaxed), ((relaxed - 0.45) ** 2).sum(-1))
    assert task.uniform(torch.Generator().manual_seed(0), (4,)).shape == (4, 1, 3)
    assert task.exact_gradient()["logits"].dtype == torch.float64  # the truth is not rounded to float32


def test_log_prob_and_sample_frequency() -> None:
    task = toy(dim=2, t=0.45, logit=-0.8)
    b = task.sample(task.theta, task.noise(torch.Generator().manual_seed(1), (40_000,)))
    p = 1.0 / (1.0 + math.exp(0.8))
    se = math.sqrt(p * (1 - p) / b.shape[0])
    assert (b.mean(0) - p).abs().max() < 4 * se
    assert not abs(float(b.mean()) - (1 - p)) < 4 * se  # the other state's probability is rejected
    expected = torch.distributions.Bernoulli(logits=torch.full((2,), -0.8, dtype=torch.float64)).log_prob(b[:10])
    torch.testing.assert_close(task.log_prob(task.theta, b[:10]), expected.sum(-1))


def test_the_default_sweeps_tuckers_and_grathwohls_targets_in_one_dimension() -> None:
    defaults = {p.name: p.default_values for p in get_task("bernoulli-toy").params}
    assert defaults == {"dim": (1,), "t": (0.45, 0.499), "logit": (0.0,), "dtype": ("float64",)}


# -- every Bernoulli estimator against the truth -----------------------------------------------------
def applicable(task: Task, biased: bool, batch: int = 2) -> list[str]:
    return sorted(n for n, cls in ESTIMATORS.items() if cls.biased == biased and cls.why_not(task, batch) is None)


def test_every_bernoulli_estimator_applies() -> None:
    unbiased = {"score", "score+loo", "score+ma", "score+opt", "arm", "disarm", "rebar", "relax"}
    assert unbiased <= set(applicable(toy(), biased=False))
    assert {"gumbel", "st-gumbel", "gumbel-rao"} <= set(applicable(toy(), biased=True))
    assert "pathwise" not in applicable(toy(), biased=False)  # the hard sample is not reparameterizable


UNBIASED_CASES = [
    pytest.param(name, point, "float64", id=f"{name}-{point}-float64")
    for point in POINTS
    for name in applicable(toy(*point), biased=False)
] + [
    pytest.param(name, POINTS[1], "float32", id=f"{name}-{POINTS[1]}-float32")
    for name in ("score", "score+loo", "arm", "disarm")
]


@pytest.mark.parametrize(("name", "point", "dtype"), UNBIASED_CASES)
def test_unbiased_estimators_agree_with_the_closed_form(name: str, point: tuple[int, float, float], dtype: str) -> None:
    task = toy(*point, dtype=dtype)
    values = estimates(task, name, samples=3000, batch=2, seed=4, **FAST.get(name, {}))["logits"]
    assert values.dtype == task.dtype
    assert max_z_score(values, task.exact_gradient()["logits"]) < 4.0, name


@pytest.mark.parametrize("name", ["arm", "disarm", "score+loo"])
def test_a_wrong_truth_is_rejected_by_the_same_check(name: str) -> None:
    """The check has power: at Tucker's point the antithetic and leave-one-out estimates reject −g."""
    task = toy(1, 0.45, 0.0)
    values = estimates(task, name, samples=3000, batch=2, seed=4)["logits"]
    assert max_z_score(values, -task.exact_gradient()["logits"]) > 4.0


BIASED_POINTS = [(1, 0.45, 0.0), (1, 0.45, 1.0), (3, 0.499, 0.7)]


SECOND_ORDER = {"reinmax"}
"""Biased in general but exact here: ReinMax's backward is second-order accurate (Liu et al. 2023, Heun's
method), and this toy's f is quadratic in b, so its bias vanishes (checked below, against ST's)."""


@pytest.mark.parametrize("name", [n for n in applicable(toy(), biased=True) if n not in SECOND_ORDER])
def test_biased_estimators_are_biased_beyond_four_standard_errors(name: str) -> None:
    """Near t = ½ relaxations fail: each biased estimator misses the truth somewhere (plain ST, were
    one registered, is exact at φ = 0, hence φ = 1 too)."""
    z_scores = []
    for point in BIASED_POINTS:
        task = toy(*point)
        z_scores.append(
            max_z_score(estimates(task, name, samples=5000, seed=6)["logits"], task.exact_gradient()["logits"])
        )
    assert max(z_scores) > 4.0, (name, z_scores)


def test_reinmax_is_exact_on_a_quadratic_where_first_order_straight_through_is_not() -> None:
    """ReinMax within 4 SE of the truth at every point where plain ST (first order) misses it."""
    for point in BIASED_POINTS[1:]:
        task = toy(*point)
        exact = task.exact_gradient()["logits"]
        assert max_z_score(estimates(task, "reinmax", samples=5000, seed=6)["logits"], exact) < 4.0, point
        assert max_z_score(estimates(task, "st", samples=5000, seed=6)["logits"], exact) > 4.0, point


@pytest.mark.parametrize("name", ["gumbel", "st-gumbel", "gumbel-rao"])
def test_relaxations_converge_to_two_thirds_of_the_gradient_at_logit_zero(name: str) -> None:
    """At D = 1, φ = 0, τ = 1 the relaxed sample s = σ(l) is uniform, and E[2(s − t)s(1 − s)] (Gumbel)
    = E[2(1[s > ½] − t)s(1 − s)] (straight-through; Gumbel-Rao has its expectation) = (1 − 2t)/6,
    where the truth is (1 − 2t)/4."""
    task = toy(1, 0.45, 0.0)
    values = estimates(task, name, samples=20_000, seed=8, tau=1.0)["logits"]
    relaxed = torch.tensor([(1 - 2 * 0.45) / 6], dtype=torch.float64)
    assert max_z_score(values, relaxed) < 4.0
    assert max_z_score(values, task.exact_gradient()["logits"]) > 4.0


# -- closed-form variances ---------------------------------------------------------------------------
def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def enumerated_score_variance(dim: int, t: float, logit: float) -> float:
    """Σ_d Var[f(b)(b_d − p)] by summing over all 2^D states."""
    p = _sigmoid(logit)
    first, second = np.zeros(dim), np.zeros(dim)
    for state in itertools.product((0.0, 1.0), repeat=dim):
        b = np.array(state)
        weight = np.prod(np.where(b > 0, p, 1 - p))
        g = ((b - t) ** 2).sum() * (b - p)
        first += weight * g
        second += weight * g**2
    return float((second - first**2).sum())


def antithetic_moments(dim: int, t: float, logit: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """E ĝ and E ĝ² of ARM and DisARM per coordinate, by Gauss–Legendre quadrature over u ∈ [0, 1]^D.

    Each u_d's interval is split at σ(−φ) and σ(φ), where b⁺_d and b⁻_d jump; inside each piece the
    integrands are polynomials of degree ≤ 2 in each u_d, which four nodes integrate exactly.  The
    estimators are written from their definitions (u = σ(l), b⁺ = 1[u > σ(−φ)], b⁻ = 1[u < σ(φ)]).
    """
    cuts = sorted({0.0, _sigmoid(-logit), _sigmoid(logit), 1.0})
    x, w = np.polynomial.legendre.leggauss(4)
    nodes = np.concatenate([lo + (hi - lo) * (x + 1) / 2 for lo, hi in itertools.pairwise(cuts)])
    weights = np.concatenate([(hi - lo) * w / 2 for lo, hi in itertools.pairwise(cuts)])
    grids = np.meshgrid(*[nodes] * dim, indexing="ij")
    u = np.stack([grid.reshape(-1) for grid in grids], -1)  # (points, D)
    weight = np.prod(np.stack(np.meshgrid(*[weights] * dim, indexing="ij"), -1).reshape(-1, dim), -1)
    b_plus, b_minus = (u > _sigmoid(-logit)).astype(float), (u < _sigmoid(logit)).astype(float)
    difference = (((b_plus - t) ** 2).sum(-1) - ((b_minus - t) ** 2).sum(-1))[:, None]
    arm = difference * (u - 0.5)
    disarm = 0.5 * difference * (-1.0) ** b_minus * (b_plus != b_minus) * _sigmoid(abs(logit))
    return {name: (weight @ g, weight @ g**2) for name, g in (("arm", arm), ("disarm", disarm))}


VARIANCE_POINTS = [(1, 0.45, 0.7), (2, 0.3, -1.2), (3, 0.45, 0.0), (3, 0.499, 0.7), (1, 0.45, 0.0)]


@pytest.mark.parametrize(("dim", "t", "logit"), VARIANCE_POINTS)
def test_closed_form_variances_match_enumeration_and_quadrature(dim: int, t: float, logit: float) -> None:
    assert score_variance(dim, t, logit) == pytest.approx(enumerated_score_variance(dim, t, logit), rel=1e-10)
    gradient = exact_gradient_per_coordinate(t, logit)
    for name, closed in (("arm", arm_variance), ("disarm", disarm_variance)):
        mean, second = antithetic_moments(dim, t, logit)[name]
        np.testing.assert_allclose(mean, gradient, rtol=1e-10, err_msg=name)  # unbiased, by quadrature
        assert closed(dim, t, logit) == pytest.approx(float((second - mean**2).sum()), rel=1e-9, abs=1e-15), name
    assert disarm_variance(dim, t, logit) <= arm_variance(dim, t, logit) * (1 + 1e-12)  # Dong et al.'s claim
    assert score_variance(dim, t, logit, batch=4) == pytest.approx(score_variance(dim, t, logit) / 4)


def test_disarm_is_exact_in_one_dimension_at_logit_zero() -> None:
    """Every antithetic pair then differs, and ĝ = (1 − 2t)/4 in every draw."""
    assert disarm_variance(1, 0.45, 0.0) == pytest.approx(0.0, abs=1e-18)
    values = estimates(toy(1, 0.45, 0.0), "disarm", samples=1000, seed=1)["logits"]
    assert float(values.var(0).sum()) <= float(round_off(values.dtype, torch.tensor([0.025])).max()) ** 2


def measured_interval(values: torch.Tensor, exact: torch.Tensor) -> tuple[float, float, float]:
    row = summarize(values, exact, [1.0], level=SIGNIFICANT_LEVEL)
    return row["variance"], row["variance_lo"], row["variance_hi"]


MEASURED = [
    pytest.param(name, point, batch, dtype, id=f"{name}-{point}-n{batch}-{dtype}")
    for name in ("score", "arm", "disarm")
    for point, batch in (((1, 0.45, 0.7), 1), ((3, 0.499, 0.7), 4), ((3, 0.45, 0.0), 1))
    for dtype in DTYPES
]


@pytest.mark.parametrize(("name", "point", "batch", "dtype"), MEASURED)
def test_measured_variance_matches_the_closed_form(
    name: str, point: tuple[int, float, float], batch: int, dtype: str
) -> None:
    task = toy(*point, dtype=dtype)
    values = estimates(task, name, samples=20_000, batch=batch, seed=12)["logits"]
    closed = CLOSED_FORM_VARIANCES[name](*point, batch)
    measured, lo, hi = measured_interval(values, task.exact_gradient()["logits"])
    assert lo <= closed <= hi, (name, measured, closed)
    assert not lo <= 1.5 * closed <= hi, (name, measured, closed)  # a wrong closed form is rejected


def test_arms_formula_is_rejected_for_disarm() -> None:
    """ARM's variance is 1.5 times DisARM's at D = 3, φ = 0: the measured DisARM variance tells them apart."""
    point = (3, 0.45, 0.0)
    task = toy(*point)
    values = estimates(task, "disarm", samples=20_000, seed=12)["logits"]
    _, lo, hi = measured_interval(values, task.exact_gradient()["logits"])
    assert lo <= disarm_variance(*point) <= hi
    assert not lo <= arm_variance(*point) <= hi
