"""NVIL (rpbench.estimators.nvil) against the enumerated gradient of small VAEs.

The baseline ``b_u = c + C_ψ(x_u)`` depends on the unit's input, not on its sample, so
``E[(f − b) ∇ log q] = E[f ∇ log q]`` and the estimate is unbiased whatever c and ψ are (Mnih &
Gregor 2014, §3); a baseline that reads the sample's own f is not, and fails the same check.
"""

from __future__ import annotations

import copy

import pytest
import torch

from rpbench.engine import estimate_all, flatten_groups
from rpbench.estimators.base import Estimator
from rpbench.estimators.nvil import Nvil
from rpbench.estimators.score import objective_values, score_estimates
from rpbench.metrics import SIGNIFICANT_LEVEL, summarize
from rpbench.tasks.base import Task, Theta
from rpbench.training.loop import Checkpoint, Schedule, train_curve
from rpbench.truth import truth_of
from tests.conftest import bernoulli, bias_lo, categorical, estimates, gaussian, max_z_score, vae


def nvil(**config: object) -> Nvil:
    return Nvil({"baseline_hidden": 16, "fit_steps": 50, "normalize": 0, **config})


class OwnSampleBaseline(Nvil):
    """Deliberately wrong: the baseline of sample i is half NVIL's and half the sample's own f(z_i).

    ``E[(f − ½b − ½f) ∇ log q] = ½ E[f ∇ log q]``: the score term is halved, so the estimate is biased.
    """

    def estimate(self, task: Task, samples: int, batch: int, generator: torch.Generator) -> Theta:
        noise = task.noise(generator, (samples, batch))
        own = objective_values(task, noise)  # (K, n, U)
        return score_estimates(task, noise, 0.5 * self.baseline(task) + 0.5 * own)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("task", [categorical, bernoulli])
def test_nvil_is_unbiased_and_a_baseline_that_sees_the_sample_is_not(task, dtype: str) -> None:
    the_task = task(dtype)
    assert bias_lo(the_task, nvil()) == {"encoder": 0.0, "decoder": 0.0}
    if dtype == "float32":  # (the wrong variant's bias does not depend on the precision)
        assert bias_lo(the_task, OwnSampleBaseline(nvil().config))["encoder"] > 0.0


def test_without_inputs_the_baseline_is_c_alone_and_still_unbiased() -> None:
    task = gaussian(mu=2.0, k=0.5)  # a large mean of f: a constant baseline matters
    estimator = nvil()
    estimator.prepare(task, 1, torch.Generator().manual_seed(1))
    assert estimator.network == {} and estimator.baseline(task).shape == (1,)
    draws = estimates(task, "nvil", 4000, batch=1, fit_steps=20)
    exact = task.exact_gradient()
    assert exact is not None
    for group in ("mu", "sigma"):
        assert max_z_score(draws[group], exact[group]) < 4.0
    plain = estimates(task, "score", 4000, batch=1)
    assert draws["mu"].var() < 0.5 * plain["mu"].var()


def test_fitting_reduces_the_variance_and_unfitted_network_does_not() -> None:
    """The fitted baseline against the untrained one (c at the pilot mean, C_ψ = 0): the variance
    intervals must not overlap.  With ψ's learning rate at zero (only c moves) they do."""
    task = categorical()

    def variance(estimator: Estimator) -> dict[str, float]:
        draws = flatten_groups(estimate_all(task, estimator, 2000, 2, 7))["encoder"]
        return summarize(draws, None, [1.0], level=SIGNIFICANT_LEVEL)

    untrained = variance(nvil(fit_steps=0))
    fitted = variance(nvil(fit_steps=100))
    assert fitted["variance_hi"] < untrained["variance_lo"]
    import rpbench.estimators.nvil as module

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "FIT_LR", 0.0)
        frozen = variance(nvil(fit_steps=100))
    assert not frozen["variance_hi"] < untrained["variance_lo"]


def test_normalisation_divides_the_expectation_by_max_1_sigma() -> None:
    """``E ĝ = ∇L / max(1, σ̂)``: on a Gaussian with ``f = (x + 3)²`` (c alone: σ̂ ≈ 8) and on the
    Bernoulli VAE (σ̂ ≈ 1.3 around the untrained baseline); the same draws fail against ∇L itself."""
    task = gaussian(k=-3.0)
    estimator = nvil(normalize=1)
    draws = estimate_all(task, estimator, 4000, 2, 3)
    scale = float(estimator.scale)
    assert 4.0 < scale < 16.0
    exact = task.exact_gradient()
    assert exact is not None
    for group in ("mu", "sigma"):
        assert max_z_score(draws[group], exact[group] / scale) < 4.0, group
    assert max_z_score(draws["mu"], exact["mu"]) > 4.0  # the check can fail
    on_a_vae = nvil(normalize=1, fit_steps=0)
    vae_draws = flatten_groups(estimate_all(bernoulli(), on_a_vae, 3000, 2, 3))
    vae_scale = float(on_a_vae.scale)
    assert vae_scale > 1.1
    truth = truth_of(bernoulli())
    assert truth is not None
    for group, values in vae_draws.items():
        exact_group = flatten_groups(truth.gradient)[group]
        assert summarize(values, exact_group / vae_scale, [1.0], level=SIGNIFICANT_LEVEL)["bias_lo"] == 0.0, group
    encoder = flatten_groups(truth.gradient)["encoder"]
    assert summarize(vae_draws["encoder"], encoder, [1.0], level=SIGNIFICANT_LEVEL)["bias_lo"] > 0.0


def test_biased_is_false_on_the_class_and_true_where_normalize_is_on() -> None:
    assert Nvil.biased is False and Nvil.biased_when == "normalize=1"
    assert nvil().is_biased() is False and nvil(normalize=1).is_biased() is True


def test_adapt_is_one_fitting_step_and_a_checkpoint_resumes_exactly() -> None:
    task = categorical()

    def run(steps: int, generator: torch.Generator, estimator: Nvil | None = None) -> Nvil:
        if estimator is None:
            estimator = nvil(fit_steps=5)
            estimator.prepare(task, 2, generator)
        for _ in range(steps):
            estimator.adapt(task, 2, generator)
        return estimator

    straight = run(6, torch.Generator().manual_seed(0))
    first_generator = torch.Generator().manual_seed(0)
    first = run(3, first_generator)
    state, generator_state = first.state_dict(), first_generator.get_state()
    resumed = nvil(fit_steps=5)
    resumed.prepare(task, 2, torch.Generator().manual_seed(99))  # a different start, overwritten by the checkpoint
    resumed.load_state_dict(state)
    run(3, torch.Generator().set_state(generator_state), resumed)
    assert torch.equal(straight.offset, resumed.offset) and torch.equal(straight.signal_square, resumed.signal_square)
    for key, value in straight.network.items():
        assert torch.equal(value, resumed.network[key]), key
    same = [e.estimate(task, 5, 2, torch.Generator().manual_seed(4)) for e in (straight, resumed)]
    for group, values in flatten_groups(same[0]).items():
        assert torch.equal(values, flatten_groups(same[1])[group])
    # and the check can fail: without the checkpoint the resumed run differs
    fresh = run(3, torch.Generator().set_state(generator_state))
    assert not torch.equal(straight.offset, fresh.offset)


def test_a_training_run_resumed_from_its_checkpoint_gives_the_same_curve() -> None:
    """``rpbench train``'s loop: prepare once, adapt after every step; resuming from the checkpoint at
    step 4 gives the uninterrupted run's points 8 and 12 exactly.  (The checkpoints are copied as
    they come: the loop's own Adam state in them is the live one, written to disk at once in a run.)"""
    schedule = Schedule(steps=12, eval_every=4, eval_samples=5)
    saved: list[Checkpoint] = []
    full = list(
        train_curve(
            vae("discrete-vae", latents=2, categories=3),
            nvil(fit_steps=10),
            2,
            schedule,
            save=lambda c: saved.append(copy.deepcopy(c)),
        )
    )  # type: ignore[arg-type]
    resumed = list(
        train_curve(vae("discrete-vae", latents=2, categories=3), nvil(fit_steps=10), 2, schedule, start=saved[1])
    )  # type: ignore[arg-type]

    def curve(points: list) -> list[tuple]:
        return [(p.step, p.train_elbo, p.eval_elbo, p.eval_iwae) for p in points]

    assert [p.step for p in resumed] == [8, 12] and curve(resumed) == curve(full[2:])
    assert saved[1].state["estimator"]["offset"] != saved[-1].state["estimator"]["offset"]  # it learned online


def test_the_same_seed_gives_the_same_numbers() -> None:
    task = bernoulli()
    first, second = (flatten_groups(estimates(task, "nvil", 20, batch=2, fit_steps=10)) for _ in range(2))
    assert all(torch.equal(first[g], second[g]) for g in first)
    other = flatten_groups(estimates(task, "nvil", 20, batch=2, fit_steps=10, seed=1))
    assert not torch.equal(first["encoder"], other["encoder"])


def test_contract_needs_prepare_costs_n_and_declares_what_it_needs() -> None:
    task = categorical()
    estimator = nvil()
    with pytest.raises(RuntimeError, match="prepare"):
        estimator.estimate(task, 10, 1, torch.Generator().manual_seed(0))
    with pytest.raises(RuntimeError, match="prepare"):
        estimator.adapt(task, 1, torch.Generator().manual_seed(0))
    assert estimator.state_dict() == {}
    assert Nvil.needs == frozenset({"log-prob"}) and Nvil.cost == "n"
    assert estimator.evaluations(task, 7) == 7
    assert Nvil.why_not(vae("vae", latents=2), 1) is None  # any latent with log q (Gaussian too)


def test_the_rows_of_a_normalised_configuration_are_marked_biased() -> None:
    from rpbench.runner import execute, parse_estimators, plan

    settings = {"fn": ["quadratic"], "sigma": ["1"], "k": ["0.5"]}
    requests = parse_estimators(["nvil:normalize=0,1,fit_steps=3"])
    cells = plan("gaussian", settings, requests, 2, torch.device("cpu")).cells
    rows = [row for result in execute(cells, 20, 2, 0, repeats=1) for row in result.rows]
    assert {(row["normalize"], row["biased"]) for row in rows} == {(0, False), (1, True)}
