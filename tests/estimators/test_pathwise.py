"""The pathwise estimator (rpbench.estimators.pathwise) against the Gaussian closed forms.

For ``x = μ + σε``, ``ε ~ N(0, 1)`` (Kingma & Welling 2014; Mohamed et al. 2020, §5) one sample's
estimate is ``ĝ_μ = g'(x)`` and ``ĝ_σ = g'(x) ε``: unbiased where g is differentiable along the
path, zero almost surely on a step (biased there).  Each check holds in float64 and float32, with
tolerances from the precision's machine epsilon.
"""

from __future__ import annotations

import pytest
import torch

from rpbench.estimators.base import per_estimate_gradients
from rpbench.estimators.pathwise import Pathwise, pathwise_surrogate
from rpbench.registry import get_task
from rpbench.tasks.base import Task, Theta
from tests.conftest import CPU, DTYPES, ROUND_OFF_EPS, estimates, gaussian, max_z_score, vae

SMOOTH = ("linear", "quadratic", "cos", "expquad")


class WrongScalePathwise(Pathwise):
    """Deliberately wrong: the noise drawn with scale 2 (``x = μ + σ·2ε``), not from the base N(0, 1)."""

    def estimate(self, task: Task, samples: int, batch: int, generator: torch.Generator) -> Theta:
        noise = 2.0 * task.noise(generator, (samples, batch))
        return per_estimate_gradients(lambda th, eps: pathwise_surrogate(task, th, eps), task.theta, noise)


def _without_broadcasting(task: Task) -> Task:
    """The same Gaussian configuration, declared non-broadcasting: Pathwise takes its vmap path."""
    cls = type("NonBroadcastingGaussian", (get_task("gaussian"),), {"broadcasts_theta": False})
    return cls(task.config, CPU)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", ["quadratic", "cos"])
def test_pathwise_is_the_derivative_along_the_path_on_the_same_noise(fn: str, dtype: str) -> None:
    mu, sigma, k = 0.3, 1.4, 0.8
    task = gaussian(fn=fn, dim=2, mu=mu, sigma=sigma, k=k, dtype=dtype)
    tolerance = ROUND_OFF_EPS * torch.finfo(task.dtype).eps
    samples, batch = 6, 3
    eps = task.noise(torch.Generator().manual_seed(7), (samples, batch))
    x = mu + sigma * eps
    slope = 2 * (x - k) if fn == "quadratic" else -k * torch.sin(k * x)  # g'(x)
    expected = {"mu": slope.mean(1), "sigma": (slope * eps).mean(1)}
    for the_task in (task, _without_broadcasting(task)):  # K copies of θ, and vmap(grad)
        got = Pathwise().estimate(the_task, samples, batch, torch.Generator().manual_seed(7))
        for group in expected:
            torch.testing.assert_close(got[group], expected[group], rtol=tolerance, atol=tolerance)
    # and the check can fail: the wrongly scaled noise gives other numbers
    wrong = WrongScalePathwise().estimate(task, samples, batch, torch.Generator().manual_seed(7))
    assert not torch.allclose(wrong["sigma"], expected["sigma"])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", SMOOTH)
def test_pathwise_is_unbiased_on_smooth_functions(fn: str, dtype: str) -> None:
    task = gaussian(fn=fn, dim=2, mu=-0.4, sigma=1.6, k=1.3, dtype=dtype)
    draws = estimates(task, "pathwise", samples=20_000, batch=2, seed=11)
    exact = task.exact_gradient()
    for group, values in draws.items():
        assert max_z_score(values, exact[group]) < 4.0, group


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", ["quadratic", "cos", "expquad"])
def test_pathwise_with_the_noise_scale_wrong_fails_the_same_check(fn: str, dtype: str) -> None:
    task = gaussian(fn=fn, dim=2, mu=-0.4, sigma=1.6, k=1.3, dtype=dtype)
    draws = WrongScalePathwise().estimate(task, 20_000, 2, torch.Generator().manual_seed(11))
    exact = task.exact_gradient()
    assert max(max_z_score(draws[group], exact[group]) for group in draws) > 4.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_pathwise_on_a_step_is_biased_and_the_check_sees_it(dtype: str) -> None:
    task = gaussian(fn="step", k=0.5, dtype=dtype)
    draws = estimates(task, "pathwise", samples=2_000)
    assert torch.all(draws["mu"] == 0)  # the step's derivative is zero almost everywhere
    assert max_z_score(draws["mu"], task.exact_gradient()["mu"]) > 4.0


def test_pathwise_applies_where_the_task_is_reparameterizable() -> None:
    assert Pathwise.why_not(gaussian(), 1) is None
    assert Pathwise.why_not(vae("vae", latents=2), 1) is None
    reason = Pathwise.why_not(vae("discrete-vae", latents=2, categories=3), 1)
    assert reason is not None and "reparameterizable" in reason
    assert not Pathwise.biased  # biased on a step, but not by construction


def test_pathwise_on_a_vae_equals_a_loop_of_autograd_calls() -> None:
    """The amortized vmap (encoder run once) gives each estimate's own backward pass."""
    task = vae("vae", latents=2)
    samples, batch = 3, 2
    got = Pathwise().estimate(task, samples, batch, torch.Generator().manual_seed(1))
    noise = task.noise(torch.Generator().manual_seed(1), (samples, batch))
    for k in range(samples):
        theta = {g: {n: v.detach().requires_grad_(True) for n, v in p.items()} for g, p in task.theta.items()}
        pathwise_surrogate(task, theta, noise[k]).backward()
        for group, params in theta.items():
            for name, value in params.items():
                torch.testing.assert_close(got[group][name][k], value.grad, rtol=1e-4, atol=1e-6)
