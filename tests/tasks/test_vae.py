"""VAE tasks: the ELBO against an independent enumeration, model states, data, parameters, precision."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import distributions as D

from rpbench.data import write_idx
from rpbench.errors import UsageError
from rpbench.tasks.vae import ENUMERATION_LIMIT
from tests.conftest import ROUND_OFF_EPS, vae

PRECISIONS = ("float32", "float64")


def independent_elbo_categorical(task) -> float:
    """Σ_z q(z|x)[log p(x|z) + log p(z) − log q(z|x)], by hand with torch.distributions."""
    latents, categories = int(task.config["latents"]), int(task.config["categories"])
    with torch.no_grad():
        logits = task.logits(task.theta)  # (B, L, C)
        total = 0.0
        for u in range(task.minibatch):
            q = D.Categorical(logits=logits[u])
            for combo in itertools.product(range(categories), repeat=latents):
                index = torch.tensor(combo)
                one_hot = torch.nn.functional.one_hot(index, categories).to(task.dtype)
                log_q = q.log_prob(index).sum()
                pixels = torch.func.functional_call(task.decoder, task.theta["decoder"], (one_hot.reshape(1, -1),))[0]
                log_px = D.Bernoulli(logits=pixels).log_prob(task.x[u]).sum()
                log_pz = -latents * math.log(categories)
                total += float(log_q.exp() * (log_px + log_pz - log_q))
    return total / task.minibatch


def independent_elbo_bernoulli(task) -> float:
    latents = int(task.config["latents"])
    with torch.no_grad():
        logits = task.logits(task.theta)  # (B, L)
        total = 0.0
        for u in range(task.minibatch):
            q = D.Bernoulli(logits=logits[u])
            for combo in itertools.product((0.0, 1.0), repeat=latents):
                b = torch.tensor(combo, dtype=task.dtype)
                log_q = q.log_prob(b).sum()
                pixels = torch.func.functional_call(task.decoder, task.theta["decoder"], (b.reshape(1, -1),))[0]
                log_px = D.Bernoulli(logits=pixels).log_prob(task.x[u]).sum()
                total += float(log_q.exp() * (log_px - latents * math.log(2.0) - log_q))
    return total / task.minibatch


def enumeration_tolerance(task) -> float:
    """Relative agreement of two enumerations in the task's precision: a few dozen machine epsilons
    (they measure about one apart, in float32 as in float64)."""
    return ROUND_OFF_EPS * torch.finfo(task.dtype).eps


@pytest.mark.parametrize("dtype", PRECISIONS)
def test_categorical_elbo_matches_an_independent_enumeration(dtype: str) -> None:
    task = vae("discrete-vae", latents=2, categories=3, minibatch=3, dtype=dtype)
    expected = independent_elbo_categorical(task)
    assert task.exact_value() == pytest.approx(expected, rel=enumeration_tolerance(task))


@pytest.mark.parametrize("dtype", PRECISIONS)
@pytest.mark.parametrize("layers", ["linear", "nonlinear"])
def test_bernoulli_elbo_matches_an_independent_enumeration(layers: str, dtype: str) -> None:
    task = vae("bernoulli-vae", latents=4, layers=layers, minibatch=3, dtype=dtype)
    expected = independent_elbo_bernoulli(task)
    assert task.exact_value() == pytest.approx(expected, rel=enumeration_tolerance(task))


@pytest.mark.parametrize(
    ("name", "config"),
    [("discrete-vae", {"latents": 2, "categories": 3}), ("bernoulli-vae", {"latents": 4}), ("vae", {"latents": 2})],
)
def test_both_precisions_measure_the_same_model_on_the_same_images(name: str, config: dict) -> None:
    """float64 is the float32 initialisation converted, on the same binary images; the enumerated
    truths agree to float32's round-off, and a float64 one is exact to its own."""
    low, high = vae(name, **config), vae(name, **config, dtype="float64")
    assert low.dtype == torch.float32 and high.dtype == torch.float64
    assert high.x.dtype == torch.float64 and torch.equal(high.x, low.x.double())
    for group, params in low.theta.items():
        for key, value in params.items():
            assert high.theta[group][key].dtype == torch.float64
            assert torch.equal(high.theta[group][key], value.double()), (group, key)
    assert high.initial_state()["encoder"]["0.weight"].dtype == torch.float64
    if name == "vae":
        return
    low_grad, high_grad = low.exact_gradient(), high.exact_gradient()
    for group in low_grad:
        for key, value in low_grad[group].items():
            assert high_grad[group][key].dtype == torch.float64
            scale = float(high_grad[group][key].abs().max()) + 1.0
            assert (
                float((value.double() - high_grad[group][key]).abs().max())
                < 1e3 * torch.finfo(torch.float32).eps * scale
            )
    assert high.exact_value() == pytest.approx(low.exact_value(), rel=1e3 * torch.finfo(torch.float32).eps)
    assert high.exact_value() != low.exact_value()  # and float64 is not float32 in disguise


def test_a_trained_state_is_trained_in_the_tasks_precision() -> None:
    from rpbench.training import warm_up

    task = vae("bernoulli-vae", latents=4, minibatch=8, steps=3, dtype="float64")
    warm_up(task)
    assert all(v.dtype == torch.float64 for params in task.theta.values() for v in params.values())
    assert task.draw_minibatch(torch.Generator().manual_seed(0)).dtype == torch.float64
    assert task.eval_images().dtype == torch.float64
    assert math.isfinite(task.exact_value())


def test_two_hidden_layers_give_the_literatures_mirrored_mlp_and_its_exact_elbo() -> None:
    """hidden2 adds a second layer (Jang et al.'s 784-512-256 MLP, mirrored in the decoder); the
    enumerated ELBO still matches the independent one; hidden2=0 keeps today's one-layer networks."""
    task = vae("discrete-vae", latents=2, categories=3, minibatch=3, hidden=12, hidden2=5)
    encoder = [tuple(w.shape) for k, w in task.theta["encoder"].items() if k.endswith("weight")]
    decoder = [tuple(w.shape) for k, w in task.theta["decoder"].items() if k.endswith("weight")]
    assert encoder == [(12, 64), (5, 12), (6, 5)] and decoder == [(5, 6), (12, 5), (64, 12)]
    assert task.exact_value() == pytest.approx(independent_elbo_categorical(task), rel=1e-5)
    gaussian = vae("vae", latents=3, hidden=12, hidden2=5)
    assert [tuple(w.shape) for k, w in gaussian.theta["encoder"].items() if k.endswith("weight")][-1] == (6, 5)
    one = vae("discrete-vae", latents=2, categories=3, hidden=12)
    assert [tuple(w.shape) for k, w in one.theta["encoder"].items() if k.endswith("weight")] == [(12, 64), (6, 12)]


def test_exact_gradient_has_encoder_and_decoder_groups() -> None:
    task = vae("discrete-vae", latents=2, categories=3)
    grad = task.exact_gradient()
    assert set(grad) == {"encoder", "decoder"}
    assert set(grad["encoder"]) == set(task.theta["encoder"])
    assert all(torch.isfinite(v).all() for v in grad["decoder"].values())


def test_enumeration_limit() -> None:
    assert vae("discrete-vae", latents=2, categories=4, minibatch=32).enumerable
    assert not vae("discrete-vae", latents=20, categories=10).enumerable
    assert vae("bernoulli-vae", latents=16, minibatch=32).enumerable  # 32 × 2¹⁶ = 2²¹
    assert not vae("bernoulli-vae", latents=17, minibatch=32).enumerable
    assert ENUMERATION_LIMIT == 2**21
    assert vae("vae").exact_gradient() is None


def test_gaussian_vae_elbo_by_monte_carlo_matches_torch_distributions() -> None:
    task = vae("vae", latents=3)
    g = torch.Generator().manual_seed(0)
    noise = task.noise(g, (20000,))
    with torch.no_grad():
        z = task.sample(task.theta, noise)
        ours = task.objective(task.theta, z)  # (N, B): log p(x|z) − KL
        mean, scale = task._moments(task.theta)
        q, prior = D.Normal(mean, scale), D.Normal(torch.zeros_like(mean), torch.ones_like(scale))
        pixels = torch.func.functional_call(task.decoder, task.theta["decoder"], (z,))
        theirs = D.Bernoulli(logits=pixels).log_prob(task.x).sum(-1) + (prior.log_prob(z) - q.log_prob(z)).sum(-1)
    assert torch.allclose(task.log_prob(task.theta, z), q.log_prob(z).sum(-1), atol=1e-4)
    gap = (ours - theirs).mean(0)  # the analytic KL vs its Monte Carlo estimate
    se = (ours - theirs).std(0) / math.sqrt(noise.shape[0])
    assert (gap.abs() < 4 * se + 1e-4).all()


def test_objective_is_per_unit() -> None:
    task = vae("discrete-vae", latents=2, categories=3, minibatch=5)
    noise = task.noise(torch.Generator().manual_seed(0), (7,))
    z = task.sample(task.theta, noise)
    assert task.objective(task.theta, z).shape == (7, 5)
    assert task.log_prob(task.theta, z).shape == (7, 5)


def test_model_state_depends_on_the_model_seed() -> None:
    start = vae("bernoulli-vae", latents=4, minibatch=8)
    again = vae("bernoulli-vae", latents=4, minibatch=8)
    other_seed = vae("bernoulli-vae", latents=4, minibatch=8, model_seed=1)
    assert torch.equal(again.theta["encoder"]["0.weight"], start.theta["encoder"]["0.weight"])
    assert not torch.equal(other_seed.theta["encoder"]["0.weight"], start.theta["encoder"]["0.weight"])


def test_a_task_that_needs_training_has_no_state_until_one_is_loaded() -> None:
    """Tasks do not train themselves (rpbench.training does): until then θ refuses to be read."""
    task = vae("bernoulli-vae", latents=4, minibatch=8, steps=5)
    assert task.training_steps == 5 and not task.has_state
    with pytest.raises(RuntimeError, match=r"task bernoulli-vae with steps=5 has no model state until it is trained"):
        _ = task.theta
    initial = task.initial_state()
    task.load_state(initial)
    assert task.has_state
    at_init = vae("bernoulli-vae", latents=4, minibatch=8)
    for group in ("encoder", "decoder"):
        for key, value in at_init.theta[group].items():
            assert torch.equal(task.theta[group][key], value)
    with pytest.raises(ValueError, match="needs exactly the encoder's and decoder's parameters"):
        task.load_state({"encoder": initial["encoder"]})


def test_initial_state_is_a_fresh_copy() -> None:
    task = vae("discrete-vae", latents=2, categories=3)
    copy = task.initial_state()
    before = task.theta["encoder"]["0.weight"].clone()
    copy["encoder"]["0.weight"].add_(1.0)
    assert torch.equal(task.theta["encoder"]["0.weight"], before)
    assert torch.equal(task.initial_state()["encoder"]["0.weight"], before)


def test_evaluated_at_sets_state_and_minibatch_for_the_block_only() -> None:
    task = vae("discrete-vae", latents=2, categories=3)
    exact_before = task.exact_value()
    x, theta = task.x, task.theta
    other_x = task.draw_minibatch(torch.Generator().manual_seed(1))
    other_theta = {g: {k: v + 0.1 for k, v in p.items()} for g, p in theta.items()}
    with task.evaluated_at(other_theta, other_x):
        assert task.theta is other_theta and task.x is other_x
        assert task.exact_value() != exact_before  # the truth follows the state
    assert task.theta is theta and task.x is x
    assert task.exact_value() == exact_before


def test_training_minibatches_are_seeded_and_binary() -> None:
    task = vae("discrete-vae", latents=2, categories=3, minibatch=6, binarize="dynamic")
    first = task.draw_minibatch(torch.Generator().manual_seed(5))
    again = task.draw_minibatch(torch.Generator().manual_seed(5))
    other = task.draw_minibatch(torch.Generator().manual_seed(6))
    assert first.shape == (6, task.pixels) and set(first.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_dynamic_binarisation_is_binary_and_seeded() -> None:
    a = vae("discrete-vae", latents=2, categories=3, binarize="dynamic")
    b = vae("discrete-vae", latents=2, categories=3, binarize="dynamic")
    assert torch.equal(a.x, b.x) and set(a.x.unique().tolist()) <= {0.0, 1.0}
    static = vae("discrete-vae", latents=2, categories=3)
    assert not torch.equal(a.x, static.x)


def test_user_mnist_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 256, size=(40, 28, 28), dtype=np.uint8))
    task = vae("discrete-vae", latents=2, categories=3, data=f"mnist:{tmp_path}")
    assert task.pixels == 784 and task.x.shape == (4, 784)
    assert math.isfinite(task.exact_value())


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"data": "cifar"}, "unknown data 'cifar'"),
        ({"data": "mnist:/no/such/dir"}, "mnist:/no/such/dir"),
        ({"minibatch": 5000}, "exceeds the"),
    ],
)
def test_bad_task_settings(config: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        vae("discrete-vae", latents=2, categories=3, **config)


@pytest.mark.parametrize(
    ("name", "config", "estimator"),
    [
        ("vae", {}, "pathwise"),
        ("discrete-vae", {"latents": 3, "categories": 4}, "gumbel"),
        ("discrete-vae", {"latents": 3, "categories": 4}, "st-gumbel"),
        ("discrete-vae", {"latents": 3, "categories": 4}, "gumbel-rao"),
        ("discrete-vae", {"latents": 3, "categories": 4, "hidden2": 7}, "gumbel"),
        ("bernoulli-vae", {"latents": 6, "layers": "nonlinear"}, "gumbel"),
        ("bernoulli-vae", {"latents": 6, "layers": "linear"}, "st-gumbel"),
    ],
)
def test_amortized_encoder_gives_the_generic_estimates(
    name: str, config: dict, estimator: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Running the encoder once and pulling K cotangents back through it changes no estimate."""
    from rpbench.registry import get_estimator

    task = vae(name, **config)
    cls = get_estimator(estimator)
    the_estimator = cls({p.name: p.default_values[0] for p in cls.params})
    amortized = the_estimator.estimate(task, 5, 2, torch.Generator().manual_seed(3))
    for module in ("pathwise", "relaxed"):  # the generic vmap of grad, without the task's hook
        monkeypatch.setattr(f"rpbench.estimators.{module}.amortizer", lambda task: None)
    plain = the_estimator.estimate(task, 5, 2, torch.Generator().manual_seed(3))
    for group in plain:
        for key in plain[group]:
            assert amortized[group][key].shape == plain[group][key].shape == (5, *task.theta[group][key].shape)
            torch.testing.assert_close(amortized[group][key], plain[group][key], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("activation", [torch.nn.ReLU, torch.nn.Tanh, torch.nn.Sigmoid])
def test_batched_pullback_equals_a_vmap_of_vjp(activation: type[torch.nn.Module]) -> None:
    """The written-out MLP backward (and the generic fallback, for Sigmoid) against torch.func."""
    from rpbench.tasks.vae import batched_pullback

    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Linear(5, 7), activation(), torch.nn.Linear(7, 3))
    params = {k: v.detach() for k, v in network.named_parameters()}
    x = torch.randn(4, 5)
    output, pullback = batched_pullback(network, params, x)
    reference, vjp = torch.func.vjp(lambda p: torch.func.functional_call(network, p, (x,)), params)
    torch.testing.assert_close(output, reference)
    cotangents = torch.randn(6, 4, 3)
    grads, expected = pullback(cotangents), torch.func.vmap(vjp)(cotangents)[0]
    assert list(grads) == list(params)
    for key in params:
        torch.testing.assert_close(grads[key], expected[key])

    layer = torch.nn.Linear(5, 7, bias=False)  # a bare layer: parameter names without an index
    output, pullback = batched_pullback(layer, {"weight": layer.weight.detach()}, x)
    cotangents = torch.randn(6, 4, 7)
    torch.testing.assert_close(pullback(cotangents)["weight"], torch.einsum("kbo,bi->koi", cotangents, x))


def test_amortized_objective_keeps_the_value() -> None:
    """The linearised KL of the amortized θ has the KL's value (and the objective with it)."""
    task = vae("vae")
    reduced, _ = task.amortize(task.theta)
    z = task.sample(task.theta, task.noise(torch.Generator().manual_seed(0), (3,)))
    torch.testing.assert_close(task.objective(reduced, z), task.objective(task.theta, z))


# -- the importance-weighted bound (particles = M) ---------------------------------------------------
BOUND_TASKS = [
    ("discrete-vae", {"latents": 2, "categories": 3}),
    ("bernoulli-vae", {"latents": 3}),
]


def brute_force_bound(task) -> torch.Tensor:
    """``mean_u Σ_{z_1..z_M} Π q(z_m) · f_u(z_1..z_M)`` with the task's own objective on every tuple of
    the product space (the sample layout the estimators see), differentiable in θ."""
    single = task.all_latents()  # (|Z|, L, …)
    tuples = itertools.product(range(single.shape[0]), repeat=task.particles)
    z = torch.stack([torch.cat([single[i] for i in combo]) for combo in tuples])  # (|Z|^M, M·L, …)
    z = z.unsqueeze(1).expand(z.shape[0], task.minibatch, *z.shape[1:])
    weights = torch.exp(task.log_prob(task.theta, z))  # Π_m q(z_m): (|Z|^M, U)
    return (weights * task.objective(task.theta, z)).sum(0).mean()


@pytest.mark.parametrize(("name", "config"), BOUND_TASKS)
def test_the_enumerated_bound_is_the_objective_summed_over_the_product_space(name: str, config: dict) -> None:
    task = vae(name, minibatch=2, particles=3, dtype="float64", **config)
    theta = task.theta
    leaves = [v.requires_grad_(True) for p in theta.values() for v in p.values()]
    try:
        value = brute_force_bound(task)
        grads = torch.autograd.grad(value, leaves)
    finally:
        for leaf in leaves:
            leaf.requires_grad_(False)
    exact = task.exact_gradient()
    assert task.exact_value() == pytest.approx(float(value.detach()), rel=1e-12)
    flat = [exact[g][k] for g, p in theta.items() for k in p]
    for got, want in zip(flat, grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


def test_a_wrong_enumeration_fails_the_product_space_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mean of the log weights in place of their log-mean-exp (the ELBO, not the bound) is caught."""
    import rpbench.tasks.vae as module

    task = vae("bernoulli-vae", minibatch=2, particles=3, dtype="float64", latents=3)
    with torch.no_grad():
        value = float(brute_force_bound(task))
    monkeypatch.setattr(module, "log_mean_exp", lambda log_w: log_w.mean(-1))
    assert task.exact_value() != pytest.approx(value, rel=1e-6)


@pytest.mark.parametrize(("name", "config"), BOUND_TASKS)
def test_the_bound_rises_with_the_particles_towards_log_px(name: str, config: dict) -> None:
    """Burda et al. (2016), Theorem 1: ELBO = L_1 ≤ L_2 ≤ … ≤ log p(x), with L_1 the ELBO."""
    values = [vae(name, minibatch=2, particles=m, dtype="float64", **config).exact_value() for m in (1, 2, 3, 4)]
    task = vae(name, minibatch=2, dtype="float64", **config)
    with torch.no_grad():
        z = task.all_latents().unsqueeze(1).expand(-1, task.minibatch, *task.all_latents().shape[1:])
        log_px = float(torch.logsumexp(task.log_joint(task.theta, z), 0).mean())
    assert values == sorted(values) and values[0] < values[-1] < log_px
    assert values[0] == pytest.approx(task.exact_value(), rel=1e-12)


@pytest.mark.parametrize("name", ["discrete-vae", "bernoulli-vae", "vae"])
def test_the_bound_of_one_sample_is_the_log_mean_exp_of_its_particles_log_weights(name: str) -> None:
    """Each particle of an M-particle sample, cut out and scored by the one-particle task, gives the
    same log weight; the objective is their log-mean-exp (the layout: variable m·L + l)."""
    config = {"latents": 2, "categories": 3} if name == "discrete-vae" else {"latents": 3}
    one = vae(name, minibatch=3, dtype="float64", **config)
    many = vae(name, minibatch=3, particles=4, dtype="float64", **config)
    z = many.sample(many.theta, many.noise(torch.Generator().manual_seed(5), (2,)))  # (2, U, 4·L, …)
    latents = int(config["latents"])
    parts = [z[:, :, m * latents : (m + 1) * latents] for m in range(4)]
    log_w = torch.stack([one.log_joint(one.theta, p) - one.log_prob(one.theta, p) for p in parts], -1)
    torch.testing.assert_close(many.objective(many.theta, z), torch.logsumexp(log_w, -1) - math.log(4))
    torch.testing.assert_close(many.log_prob(many.theta, z), sum(one.log_prob(one.theta, p) for p in parts))


def test_one_particle_is_the_elbo_and_changes_no_number() -> None:
    """``particles`` is neutral: at 1 it stays out of the seeds, and the samples and values are those of
    the task without it; at 2 it enters them."""
    from rpbench.params import seed_config

    for name in ("discrete-vae", "bernoulli-vae", "vae"):
        plain = vae(name)
        explicit = vae(name, particles=1)
        z = plain.sample(plain.theta, plain.noise(torch.Generator().manual_seed(0), (3,)))
        assert torch.equal(plain.objective(plain.theta, z), explicit.objective(explicit.theta, z))
        params = type(plain).params
        assert "particles" not in seed_config(explicit.config, params)
        assert seed_config({**explicit.config, "particles": 2}, params)["particles"] == 2


def test_enumeration_limit_counts_the_tuples_of_particles() -> None:
    assert vae("bernoulli-vae", latents=4, minibatch=32, particles=4).enumerable  # 32 × 2¹⁶ = 2²¹
    assert not vae("bernoulli-vae", latents=4, minibatch=32, particles=5).enumerable
    assert not vae("bernoulli-vae", latents=4, minibatch=64, particles=4).enumerable
    assert vae("discrete-vae", latents=2, categories=4, minibatch=32, particles=2).enumerable  # 32 × 16²
    assert not vae("bernoulli-vae", latents=200, particles=10).enumerable  # (2²⁰⁰)¹⁰ overflows a float
    assert not vae("vae", particles=50).enumerable


def test_particles_must_be_at_least_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import exit_code

    args = ["run", "--task", "vae", "-p", "particles=0", "-e", "pathwise", "-K", "10", "--out", str(tmp_path)]
    assert exit_code(args) == 2
    assert "particles" in capsys.readouterr().err and not any(tmp_path.iterdir())


@pytest.mark.parametrize(("name", "config"), BOUND_TASKS)
def test_a_sampled_kl_is_the_one_particle_bound_with_the_elbos_truth(name: str, config: dict) -> None:
    closed = vae(name, minibatch=2, dtype="float64", **config)
    sampled = vae(name, minibatch=2, dtype="float64", kl="sampled", **config)
    z = sampled.sample(sampled.theta, sampled.noise(torch.Generator().manual_seed(1), (4,)))
    log_w = closed.log_joint(closed.theta, z) - closed.log_prob(closed.theta, z)
    torch.testing.assert_close(sampled.objective(sampled.theta, z), log_w)
    assert not torch.allclose(closed.objective(closed.theta, z), log_w)  # the closed form differs per sample
    assert sampled.exact_value() == pytest.approx(closed.exact_value(), rel=1e-12)
    for group, grads in closed.exact_gradient().items():
        for key, value in grads.items():
            torch.testing.assert_close(sampled.exact_gradient()[group][key], value)


def test_a_closed_form_kl_with_several_particles_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import exit_code

    with pytest.raises(UsageError, match=r"kl=closed-form needs particles=1.*valid: kl=auto or kl=sampled"):
        vae("vae", particles=2, kl="closed-form")
    args = ["run", "-t", "vae", "-p", "particles=2", "-p", "kl=closed-form", "-e", "pathwise", "--out", str(tmp_path)]
    assert exit_code(args) == 2
    assert "kl=closed-form needs particles=1" in capsys.readouterr().err and not any(tmp_path.iterdir())
