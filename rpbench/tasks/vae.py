"""Variational autoencoders on real binarised images: categorical, Bernoulli and Gaussian latents.

Each task is the negative-free ELBO of a VAE at a fixed, reproducible model state, averaged over a
fixed minibatch of real images (one *unit* per image)::

    L(θ) = mean_u  E_{q(z|x_u)} [ log p(x_u | z) ] − KL(q(z|x_u) ‖ p(z))

with the KL in closed form (uniform categorical, Bernoulli(½) or N(0, I) prior) and a Bernoulli
likelihood.  With ``particles = M ≥ 2`` the objective is instead the M-sample importance-weighted
bound of Burda, Grosse & Salakhutdinov (2016), one bound per image::

    L_M(θ) = mean_u  E_{z_1..z_M ~ q(·|x_u)} [ log (1/M) Σ_m p(x_u, z_m) / q(z_m | x_u) ]

(``L_1`` is the ELBO; ``L_M`` rises with M towards ``log p(x_u)``).  ``kl=sampled`` takes the
one-particle bound ``log w`` as the objective at M = 1 too (the same expectation and gradient as the
closed-form ELBO, with the KL's noise in every estimate: the M = 1 point of the IWAE family);
``kl=auto``, the default, keeps the closed-form KL at M = 1.

One sample then holds the M particles of every image side by side on the latent-variable axis
(``M·L`` variables, particle major), so every estimator sees the M-fold product distribution as
one larger latent: the estimators of the ELBO apply unchanged and stay unbiased where they were,
and :class:`~rpbench.tasks.protocols.ImportanceWeighted` gives VIMCO and DReG the per-particle terms.

The gradient groups are the ``encoder`` (where the estimator matters) and the ``decoder``
parameters.  The model state is the initialisation drawn from ``model_seed``, or that
state after ``steps`` Adam steps (lr 1e-3) on random training minibatches with the task's stated
training estimator; the measured minibatch is the first ``minibatch`` training images.  Training
is not done here: a task with ``steps > 0`` declares what training needs
(:class:`~rpbench.tasks.protocols.Trainable`) and has no state until the layer above tasks and
estimators (:func:`rpbench.training.warm_up`, called when a run is planned) loads the trained one.

Truth: when ``minibatch × |latent space| ≤ 2²¹`` the ELBO and its gradient are computed exactly by
enumerating every latent configuration (e.g. 2×4 categorical, up to 16 Bernoulli latents at
minibatch 32).  The bound ``L_M`` needs the M-fold product space, ``|Z|^M`` tuples per image, so it
is enumerated while ``minibatch × |Z|^M ≤ 2²¹`` (e.g. 4 Bernoulli latents with M = 4 at minibatch
32); the decoder runs once per configuration and the tuples only combine those terms (in
float64).  Otherwise the truth is a reference gradient averaged from ``reference`` samples of the
task's unbiased reference estimator, with its standard error carried into the bias CI.

Precision: ``dtype`` (float32 by default, or float64) is that of the model state, the images, the
noise and the estimates.  The initialisation is drawn in float32 and then converted, and the
images are binarised before they are converted, so both precisions measure the same model on the
same images.  The enumerated truth is computed in the task's ``dtype`` (float32 by default, as
before the parameter existed, so that earlier numbers reproduce; choose float64 for a truth exact
to double round-off); a reference truth is drawn in ``dtype`` and reduced in float64.

References: Kingma & Welling (2014) (VAE); Jang, Gu & Poole (2017) (categorical VAE, 20×10);
Tucker et al. (2017), Grathwohl et al. (2018), Dong, Mnih & Tucker (2020) (Bernoulli VAEs with
200 latents, linear or two 200-unit tanh layers).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import ClassVar, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vjp, vmap

from rpbench.data import BINARIZATIONS, binarize, load_dataset
from rpbench.distributions import Bernoulli, Categorical, log_mean_exp
from rpbench.errors import UsageError
from rpbench.params import ParamSpec, at_least
from rpbench.tasks.base import Task, Theta, dtype_param
from rpbench.tasks.protocols import (
    Amortized,
    BernoulliLatent,
    CategoricalLatent,
    Conditioned,
    ImportanceWeighted,
    ModelState,
    ReferenceTruth,
    RelaxableLatent,
    ThetaPullback,
    Trainable,
)

ENUMERATION_LIMIT = 2**21
"""Enumerate the latent space when ``minibatch × |Z|`` is at most this."""

COMMON_PARAMS = (
    ParamSpec(
        "data",
        str,
        "digits",
        "digits | mnist5k | mnist:PATH (IDX files you have)",
        expect="digits, mnist5k, mnist:PATH",
    ),
    ParamSpec("binarize", str, "static", "static (threshold ½) or dynamic (Bernoulli draw)", choices=BINARIZATIONS),
    ParamSpec(
        "minibatch", int, 32, "images in the fixed minibatch (units)", check=at_least(1), expect="an integer >= 1"
    ),
    ParamSpec(
        "hidden", int, 128, "hidden units per layer of encoder and decoder", check=at_least(1), expect="an integer >= 1"
    ),
    ParamSpec(
        "steps",
        int,
        0,
        "Adam steps of training before measuring (0: at initialisation)",
        check=at_least(0),
        expect="an integer >= 0",
    ),
    ParamSpec(
        "model_seed", int, 0, "seed of the initialisation, the training and dynamic binarisation", expect="an integer"
    ),
    ParamSpec(
        "reference",
        int,
        20000,
        "samples of the reference gradient when not enumerable",
        check=at_least(100),
        expect="an integer >= 100",
    ),
)

HIDDEN2 = ParamSpec(
    "hidden2",
    int,
    0,
    "units of a second hidden layer (0: one layer); hidden=512, hidden2=256 is Jang et al.'s 784-512-256 MLP",
    check=at_least(0),
    expect="an integer >= 0",
    neutral=True,  # added later: at 0 the seeds (and so every published number) stay as they were
)

DTYPE = dtype_param("float32")

PARTICLES = ParamSpec(
    "particles",
    int,
    1,
    "particles M of the importance-weighted bound per image (1: the ELBO; Burda et al. 2016)",
    check=at_least(1),
    expect="an integer >= 1",
    neutral=True,  # added later: at 1 the seeds (and so every published number) stay as they were
)

KL_FORMS = ("auto", "closed-form", "sampled")
KL = ParamSpec(
    "kl",
    str,
    "auto",
    "the KL term: closed-form (the ELBO, particles=1 only), sampled (log w = log p(x,z) - log q(z|x), "
    "the one-particle bound) or auto (closed-form at particles=1, sampled above)",
    choices=KL_FORMS,
    neutral=True,
)


def hidden_sizes(config: Mapping[str, object]) -> list[int]:
    """The hidden layers' widths from the input side of the encoder: ``hidden`` (then ``hidden2``)."""
    second = int(cast(int, config.get("hidden2", 0)))
    return [int(cast(int, config["hidden"])), *([second] if second else [])]


def mirrored_mlps(pixels: int, code: int, latents: int, config: Mapping[str, object]) -> tuple[nn.Module, nn.Module]:
    """An encoder ``pixels → hidden (→ hidden2) → code`` and the mirrored decoder ``latents → … → pixels``."""
    sizes = hidden_sizes(config)
    return _mlp([pixels, *sizes, code], nn.ReLU), _mlp([latents, *reversed(sizes), pixels], nn.ReLU)


_INITIAL_STATES: dict[tuple[object, ...], ModelState] = {}
EVAL_BINARIZATION_SEED = 0x5EED
"""Seed of the eval images' dynamic binarisation: one fixed draw, whatever the model seed."""


_PLAIN_LAYERS = (nn.Linear, nn.ReLU, nn.Tanh, nn.Identity)


def network_forward(network: nn.Module, params: Mapping[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``network(x)`` with the weights ``params``: what ``torch.func.functional_call`` gives, the same
    operations (bit for bit), but for a stack of linear layers and ReLU / Tanh written out, without
    swapping the module's parameters in and out (a training step's fixed cost)."""
    layers = list(network) if isinstance(network, nn.Sequential) else [network]
    if not all(isinstance(layer, _PLAIN_LAYERS) for layer in layers):
        return functional_call(network, dict(params), (x,))
    prefix = "{}." if isinstance(network, nn.Sequential) else ""
    h = x
    for i, layer in enumerate(layers):
        if isinstance(layer, nn.Linear):
            name = prefix.format(i)
            h = F.linear(h, params[f"{name}weight"], params.get(f"{name}bias"))
        elif isinstance(layer, nn.ReLU):
            h = torch.relu(h)
        elif isinstance(layer, nn.Tanh):
            h = torch.tanh(h)
    return h


Pullback = Callable[[torch.Tensor], dict[str, torch.Tensor]]
"""Maps K cotangents ``(K, *output)`` of a network's output to K gradients ``{name: (K, *param)}``."""


def batched_pullback(
    network: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor
) -> tuple[torch.Tensor, Pullback]:
    """``network(x)`` with ``params``, and the pullback of K cotangents of it to per-estimate parameter gradients.

    The forward runs once.  For a stack of ``nn.Linear`` layers with ReLU / Tanh / identity
    activations the backward is written out: each weight gradient is one batched matmul of the K
    stacked cotangents with the layer input they share (``einsum('kbo,bi->koi')``), each bias
    gradient one sum, and the cotangents go down a layer in one matmul.  Any other network falls
    back to ``vmap`` of its ``torch.func.vjp``.
    """
    layers = list(network) if isinstance(network, nn.Sequential) else [network]
    if not all(isinstance(layer, nn.Linear | nn.ReLU | nn.Tanh | nn.Identity) for layer in layers):
        output, network_vjp = vjp(lambda p: functional_call(network, p, (x,)), params)[:2]
        return output, lambda cotangents: vmap(network_vjp)(cotangents)[0]
    prefix = "{}." if isinstance(network, nn.Sequential) else ""
    inputs: list[torch.Tensor] = []  # the input of each layer
    h = x
    for i, layer in enumerate(layers):
        inputs.append(h)
        if isinstance(layer, nn.Linear):
            name = prefix.format(i)
            h = F.linear(h, params[f"{name}weight"], params.get(f"{name}bias"))
        elif isinstance(layer, nn.ReLU):
            h = torch.relu(h)
        elif isinstance(layer, nn.Tanh):
            h = torch.tanh(h)
    outputs = [*inputs[1:], h]
    derivatives = {  # of each activation, at its output
        i: (outputs[i] > 0).to(x.dtype) if isinstance(layer, nn.ReLU) else 1 - outputs[i] ** 2
        for i, layer in enumerate(layers)
        if isinstance(layer, nn.ReLU | nn.Tanh)
    }

    def pullback(cotangent: torch.Tensor) -> dict[str, torch.Tensor]:
        grads: dict[str, torch.Tensor] = {}
        g = cotangent  # (K, *batch, out)
        for i in range(len(layers) - 1, -1, -1):
            layer = layers[i]
            if isinstance(layer, nn.Linear):
                name = prefix.format(i)
                a = inputs[i].reshape(-1, inputs[i].shape[-1])  # (B, in), shared by the K estimates
                flat = g.reshape(g.shape[0], -1, g.shape[-1])  # (K, B, out)
                grads[f"{name}weight"] = torch.matmul(flat.transpose(1, 2), a)  # (K, out, in): one matmul
                if f"{name}bias" in params:
                    grads[f"{name}bias"] = flat.sum(1)
                if i > 0:
                    g = torch.matmul(g, params[f"{name}weight"])  # a fresh tensor: the activations below act in place
            elif i in derivatives:
                g = g.mul_(derivatives[i]) if g is not cotangent else g * derivatives[i]
        return {name: grads[name] for name in params}

    return h, pullback


def _broadcastable(tensor: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``tensor`` viewed with the leading singleton dimensions that broadcasting against ``like`` adds.

    The same values; but where a dimension of ``like`` is 1 (one sample per estimate) the backward
    then needs no reduction over it, which under vmap is a copy of the whole cotangent.
    """
    return tensor.reshape((1,) * (like.dim() - tensor.dim()) + tensor.shape)


def _mlp(sizes: list[int], activation: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(fan_in, fan_out))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class VAETask(Task, Amortized, Conditioned, ImportanceWeighted, ReferenceTruth, Trainable):
    """Shared machinery: data, networks, the ELBO, enumeration, and what training needs."""

    variational_groups = ("encoder",)
    latent: ClassVar[type[Categorical] | type[Bernoulli] | None] = None
    truth = "enumeration if minibatch x |Z| <= 2^21, else reference"
    trains = "Adam ascends the ELBO"

    def __init__(self, config: Mapping[str, object], device: torch.device) -> None:
        super().__init__(config, device)
        data = load_dataset(str(self.config["data"]))
        self.data = data
        self.minibatch = int(self.config["minibatch"])
        if self.minibatch > data.train.shape[0]:
            raise UsageError(
                f"task {self.name}: minibatch={self.minibatch} exceeds the "
                f"{data.train.shape[0]} training images of {data.name}"
            )
        if self.particles > 1 and self.config.get("kl", "auto") == "closed-form":
            raise UsageError(
                f"task {self.name}: kl=closed-form needs particles=1 (the bound's weights hold log q); "
                f"got particles={self.particles}; valid: kl=auto or kl=sampled"
            )
        self.pixels = data.train.shape[1]
        self.encoder, self.decoder = self.build_networks()
        self.x = self.fixed_minibatch()
        self._theta: Theta | None = None
        self._exact: tuple[Theta, float] | None = None
        if self.training_steps == 0:
            self.load_state(self._initial())

    # -- model -------------------------------------------------------------------------------------
    def build_networks(self) -> tuple[nn.Module, nn.Module]:
        raise NotImplementedError

    def _initial(self) -> ModelState:
        """The initialisation drawn from ``model_seed`` (cached per configuration; not to be modified)."""
        key = self.state_key
        if key not in _INITIAL_STATES:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.model_seed)
                for module in (self.encoder, self.decoder):
                    for layer in module.modules():
                        if isinstance(layer, nn.Linear):
                            layer.reset_parameters()
            _INITIAL_STATES[key] = {  # drawn in float32 (the modules'), then converted: one model in either dtype
                "encoder": {k: v.detach().to(self.dtype).clone() for k, v in self.encoder.named_parameters()},
                "decoder": {k: v.detach().to(self.dtype).clone() for k, v in self.decoder.named_parameters()},
            }
        return _INITIAL_STATES[key]

    @property
    def theta(self) -> Theta:
        if self._theta is None:
            raise RuntimeError(
                f"task {self.name} with steps={self.training_steps} has no model state until it is trained "
                "(rpbench.training.warm_up(task) trains it)"
            )
        return self._theta

    # -- what training needs (rpbench.training; see rpbench.tasks.protocols.Trainable) ---------------
    train_estimator: ClassVar[tuple[str, dict[str, object], int]]

    @property
    def training_steps(self) -> int:
        return int(self.config["steps"])

    @property
    def model_seed(self) -> int:
        return int(self.config["model_seed"])

    @property
    def state_key(self) -> tuple[object, ...]:
        """The task and every parameter but ``reference`` (which does not change the model)."""
        return (self.name, *sorted((k, v) for k, v in self.config.items() if k != "reference"))

    @property
    def has_state(self) -> bool:
        return self._theta is not None

    def initial_state(self) -> ModelState:
        """A fresh copy of the initialisation from ``model_seed``: ``{"encoder": {…}, "decoder": {…}}``,
        on the CPU, in ``dtype``."""
        return {group: {k: v.clone() for k, v in params.items()} for group, params in self._initial().items()}

    def draw_minibatch(self, generator: torch.Generator) -> torch.Tensor:
        """``minibatch`` training images drawn with replacement, binarised as configured: ``(U, pixels)``.

        ``generator`` (a CPU generator) draws the indices and then the dynamic binarisation (of the
        float32 images, whatever ``dtype`` is; the binary images are then converted to it).
        """
        images = self.data.train
        index = torch.randint(images.shape[0], (self.minibatch,), generator=generator)
        return binarize(images[index], str(self.config["binarize"]), generator).to(self.device, self.dtype)

    @contextmanager
    def evaluated_at(self, theta: ModelState, x: torch.Tensor) -> Iterator[None]:
        """Inside the block θ is ``theta`` (its tensors as given) and the minibatch is ``x`` (of any size)."""
        saved = self._theta, self.x, self._exact, self.minibatch
        self._theta, self.x, self._exact, self.minibatch = cast(Theta, theta), x, None, x.shape[0]
        try:
            yield
        finally:
            self._theta, self.x, self._exact, self.minibatch = saved

    def fixed_minibatch(self) -> torch.Tensor:
        """The measured minibatch: the first ``minibatch`` training images, binarised as configured (a
        dynamic draw from a CPU generator seeded ``model_seed``), ``(minibatch, pixels)`` on ``device``;
        built from the configuration, so the same inside :meth:`evaluated_at` as outside."""
        generator = torch.Generator().manual_seed(self.model_seed)
        images = self.data.train[: int(self.config["minibatch"])]
        return binarize(images, str(self.config["binarize"]), generator).to(self.device, self.dtype)

    def eval_images(self) -> torch.Tensor:
        """The data set's fixed eval split, binarised as configured (a dynamic draw from a fixed seed,
        the same for every model seed): ``(N_eval, pixels)`` on ``device``."""
        generator = torch.Generator().manual_seed(EVAL_BINARIZATION_SEED)
        return binarize(self.data.eval, str(self.config["binarize"]), generator).to(self.device, self.dtype)

    def log_joint(self, theta: Theta, z: torch.Tensor) -> torch.Tensor:
        """``log p(x_u, z_u) = log p(x_u | z_u) + log p(z_u)`` per unit: ``(..., U)``."""
        return self.log_likelihood(theta, z) + self.log_prior(z)

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """``log p(z_u)`` per unit under the model's prior: ``(..., U)``."""
        raise NotImplementedError

    def load_state(self, theta: ModelState) -> None:
        """Measure at model state ``theta`` (``{"encoder": {…}, "decoder": {…}}``, named as the networks'
        parameters), moved to the task's device and ``dtype``; forgets the enumerated truth of any previous state."""
        networks = {"encoder": self.encoder, "decoder": self.decoder}
        if set(theta) != set(networks) or any(
            set(theta[group]) != {name for name, _ in network.named_parameters()} for group, network in networks.items()
        ):
            raise ValueError(f"task {self.name}: a model state needs exactly the encoder's and decoder's parameters")
        state = {group: {k: v.to(self.device, self.dtype) for k, v in theta[group].items()} for group in networks}
        self._theta = cast(Theta, state)
        self._exact = None

    # -- the reference truth (rpbench.truth; see rpbench.tasks.protocols.ReferenceTruth) ------------
    reference_estimator: ClassVar[tuple[str, dict[str, object], int]]

    @property
    def reference_samples(self) -> int:
        return int(self.config["reference"])

    @property
    def units(self) -> int:
        return self.minibatch

    # -- the importance-weighted bound (see rpbench.tasks.protocols.ImportanceWeighted) -------------
    @property
    def particles(self) -> int:
        return int(self.config.get("particles", 1))

    @property
    def is_bound(self) -> bool:
        """Whether the objective is the log-mean-exp of the particles' log weights (M ≥ 2, or
        ``kl=sampled``) rather than the ELBO with its KL in closed form."""
        return self.particles > 1 or self.config.get("kl", "auto") == "sampled"

    def tile_particles(self, per_unit: torch.Tensor) -> torch.Tensor:
        """One particle's per-unit latent parameters ``(U, L, …)`` repeated for the M particles along
        the variable axis: ``(U, M·L, …)`` (the tensor itself where M = 1)."""
        if self.particles == 1:
            return per_unit
        return per_unit.repeat(1, self.particles, *[1] * (per_unit.dim() - 2))

    def particle_view(self, z: torch.Tensor) -> torch.Tensor:
        """Latents ``(*S, U, M·L, …)`` as M single-particle samples ``(M, *S, U, L, …)``."""
        lead = z.dim() - self.event_dims  # the variable axis
        split = z.reshape(*z.shape[:lead], self.particles, -1, *z.shape[lead + 1 :])
        return split.movedim(lead, 0)

    def particle_log_joint(self, theta: Theta, z: torch.Tensor) -> torch.Tensor:
        """``log p(x_u, z_um)``: ``(*S, U, M)``."""
        return self.log_joint(theta, self.particle_view(z)).movedim(0, -1)

    def particle_log_prob(self, theta: Theta, z: torch.Tensor) -> torch.Tensor:
        """``log q(z_um | x_u)``: ``(*S, U, M)``."""
        return self.single_log_prob(theta, self.particle_view(z)).movedim(0, -1)

    def single_log_prob(self, theta: Theta, z: torch.Tensor) -> torch.Tensor:
        """``log q(z_u | x_u)`` of single-particle latents ``(..., U, L, …)``: ``(..., U)``."""
        raise NotImplementedError

    @property
    def inputs(self) -> torch.Tensor:
        """The minibatch being measured (or trained on, inside :meth:`evaluated_at`): ``(U, pixels)``."""
        return self.x

    def without_model_gradient(self, theta: Theta) -> Theta:
        return {**theta, "decoder": {k: v.detach() for k, v in theta["decoder"].items()}}

    def encode(self, theta: Theta) -> torch.Tensor:
        encoder = theta["encoder"]
        if isinstance(encoder, torch.Tensor):  # θ as `amortize` gives it: the encoder stands for its output
            return encoder
        return network_forward(self.encoder, encoder, self.x)

    def encoded(self, theta: Theta) -> Theta:
        return {**theta, "encoder": self.encode(theta)}

    def amortize(self, theta: Theta) -> tuple[Theta, ThetaPullback]:
        """θ with the ``encoder`` group replaced by its output on the minibatch, and the pullback.

        The encoder's output (the parameters of q(z|x_u)) does not depend on the noise, so an
        estimator can run the encoder once, take K per-estimate gradients with respect to its
        output, and map them back to per-estimate encoder-parameter gradients in one batched
        backward (:func:`rpbench.estimators.base.per_estimate_gradients` with ``amortize``).
        """
        output, pullback = batched_pullback(self.encoder, theta["encoder"], self.x)

        def theta_pullback(grads: Theta) -> Theta:
            return cast(Theta, {**grads, "encoder": pullback(grads["encoder"])})

        return {**theta, "encoder": output}, theta_pullback

    def log_likelihood(self, theta: Theta, z: torch.Tensor) -> torch.Tensor:
        """``log p(x_u | z_u)`` per unit for latents ``z`` of shape ``(..., U, latent...)``."""
        flat = z.reshape(*z.shape[: z.dim() - self.event_dims], -1)
        logits = network_forward(self.decoder, cast(dict[str, torch.Tensor], theta["decoder"]), flat)
        # Σ_pixels x·l − softplus(l), i.e. −BCE-with-logits: the same value in fewer elementwise ops
        # under vmap (which decomposes binary_cross_entropy_with_logits into about a dozen).
        return (logits * self.x).sum(-1) - F.softplus(logits).sum(-1)

    def kl(self, theta: Theta) -> torch.Tensor:
        """``KL(q(z|x_u) ‖ p(z))`` per unit, in closed form."""
        raise NotImplementedError

    def objective(self, theta: Theta, z: torch.Tensor) -> torch.Tensor:
        if self.is_bound:  # the importance-weighted bound of each unit
            return log_mean_exp(self.particle_log_joint(theta, z) - self.particle_log_prob(theta, z))
        encoder = theta["encoder"]
        if not isinstance(encoder, torch.Tensor) or encoder.grad_fn is not None:
            # θ itself, or θ from `encoded` (one estimate, plain autograd: the output is computed
            # from the weights in this graph, and the KL is differentiated through it as it is)
            return self.log_likelihood(theta, z) - self.kl(theta)
        # θ from `amortize`: the KL is a function of the encoder output alone, the same in every lane of
        # a vmap.  Its value and slope are computed once, outside the lanes' autograd; the term is then
        # linear in the output, so its per-lane backward is one multiply instead of the KL's chain.
        # (First derivatives are exact; `amortize` offers no second derivatives.)
        output = encoder.detach()
        kl, kl_vjp = vjp(lambda h: self.kl({"encoder": h}), output)[:2]
        (slope,) = kl_vjp(torch.ones_like(kl))
        kl = kl + ((encoder - output) * slope).sum(-1)
        return self.log_likelihood(theta, z) - kl

    event_dims: ClassVar[int] = 1

    # -- truth -------------------------------------------------------------------------------------
    def latent_space_size(self) -> float:
        raise NotImplementedError

    @property
    def enumerable(self) -> bool:
        """Whether ``minibatch × |Z|^M`` (the tuples of M particles per image) is within the limit
        (in integers: ``|Z|^M`` overflows a float for 200 binary latents and M = 10)."""
        size = self.latent_space_size()
        return math.isfinite(size) and self.minibatch * round(size) ** self.particles <= ENUMERATION_LIMIT

    def all_latents(self) -> torch.Tensor:
        """Every latent configuration, ``(|Z|, latent...)``."""
        raise NotImplementedError

    def enumerated_elbo(self, theta: Theta, chunk: int = 512) -> torch.Tensor:
        """The exact ELBO ``mean_u Σ_z q(z|x_u) f_u(z)``, differentiable in θ, computed in the task's ``dtype``."""
        configs = self.all_latents()
        total = torch.zeros((), dtype=self.dtype, device=self.device)
        for start in range(0, configs.shape[0], chunk):
            z = configs[start : start + chunk]
            z = z.unsqueeze(1).expand(z.shape[0], self.minibatch, *z.shape[1:])  # (chunk, U, latent...)
            weights = torch.exp(self.log_prob(theta, z))  # (chunk, U)
            total = total + (weights * self.log_likelihood(theta, z)).sum()
        return total / self.minibatch - self.kl(theta).mean()

    def configuration_terms(self, theta: Theta, chunk: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
        """``log q(z|x_u)`` and ``log w(z) = log p(x_u, z) − log q(z|x_u)`` of every single-particle
        configuration z: two ``(|Z|, U)`` tensors, differentiable in θ."""
        configs = self.all_latents()
        log_q, log_w = [], []
        for start in range(0, configs.shape[0], chunk):
            z = configs[start : start + chunk]
            z = z.unsqueeze(1).expand(z.shape[0], self.minibatch, *z.shape[1:])  # (chunk, U, latent...)
            q = self.single_log_prob(theta, z)
            log_q.append(q)
            log_w.append(self.log_joint(theta, z) - q)
        return torch.cat(log_q), torch.cat(log_w)

    def _enumerate(self) -> tuple[Theta, float]:
        if self._exact is None:
            theta = {g: {k: v.detach().requires_grad_(True) for k, v in p.items()} for g, p in self.theta.items()}
            leaves = [v for p in theta.values() for v in p.values()]
            if self.particles == 1:
                elbo = self.enumerated_elbo(theta)
                value, grads = float(elbo.detach()), iter(torch.autograd.grad(elbo, leaves))
            else:  # the bound: per-configuration terms once, then their expectation over the M-tuples
                log_q, log_w = self.configuration_terms(theta)
                bound, slopes = product_expectation(log_q.detach(), log_w.detach(), self.particles)
                cotangents = tuple(s.to(log_q.dtype) for s in slopes)
                value, grads = bound, iter(torch.autograd.grad((log_q, log_w), leaves, cotangents))
            gradient = {g: {k: next(grads) for k in p} for g, p in theta.items()}
            self._exact = (gradient, value)
        return self._exact

    @property
    def truth_kind(self) -> str:
        return "enumeration"

    def exact_gradient(self) -> Theta | None:
        return self._enumerate()[0] if self.enumerable else None

    def exact_value(self) -> float | None:
        return self._enumerate()[1] if self.enumerable else None


class _RelaxableVAE(VAETask, RelaxableLatent):
    """A VAE with a discrete latent family (categorical or Bernoulli)."""

    latent: ClassVar[type[Categorical] | type[Bernoulli]]

    def logits(self, theta: Theta) -> torch.Tensor:
        """The logits of every variable of a sample, ``latent_shape`` (one particle's, tiled M times)."""
        return self.tile_particles(self.unit_logits(theta))

    def unit_logits(self, theta: Theta) -> torch.Tensor:
        """The logits of one particle of each unit: ``(U, L, …)``."""
        raise NotImplementedError

    def single_log_prob(self, theta: Theta, z: torch.Tensor) -> torch.Tensor:
        return self.latent.log_prob(self.unit_logits(theta), z)

    def noise(self, generator: torch.Generator, shape: tuple[int, ...]) -> torch.Tensor:
        return self.latent.perturbation(generator, (*shape, *self.latent_shape), self.dtype, self.device)

    def uniform(self, generator: torch.Generator, shape: tuple[int, ...]) -> torch.Tensor:
        """Extra uniform noise of the latent's shape, e.g. for conditional samples."""
        u = torch.rand(*shape, *self.latent_shape, generator=generator, dtype=self.dtype, device=self.device)
        return u.clamp(1e-12, 1 - torch.finfo(self.dtype).eps)  # float32: 1 − 1e-7 as float32 rounds it, as before

    def perturb(self, theta: Theta, noise: torch.Tensor) -> torch.Tensor:
        """Perturbed logits ``z`` (differentiable); the sample is ``latent.hard(z)``."""
        return _broadcastable(self.logits(theta), noise) + noise

    def sample(self, theta: Theta, noise: torch.Tensor) -> torch.Tensor:
        return self.latent.hard(self.perturb(theta, noise)).detach()

    def log_prob(self, theta: Theta, z: torch.Tensor) -> torch.Tensor:
        return self.latent.log_prob(self.logits(theta), z)

    def kl(self, theta: Theta) -> torch.Tensor:
        return self.latent.kl_to_uniform(self.unit_logits(theta))

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """The uniform prior (zero logits: ``1/categories`` per variable, or Bern(1/2))."""
        return self.latent.log_prob(torch.zeros_like(z), z)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        raise NotImplementedError


class DiscreteVAE(_RelaxableVAE, CategoricalLatent):
    """Categorical VAE: ``latents`` variables of ``categories`` classes (Jang, Gu & Poole 2017)."""

    name = "discrete-vae"
    offers = "log-prob, relaxable, categorical, importance-weighted"
    summary = "categorical VAE (latents x categories, uniform prior), MLP encoder/decoder, Bernoulli pixels"
    latent = Categorical
    event_dims = 2
    params = (
        ParamSpec("latents", int, 20, "categorical latent variables L", check=at_least(1), expect="an integer >= 1"),
        ParamSpec("categories", int, 10, "classes per variable C", check=at_least(2), expect="an integer >= 2"),
        *COMMON_PARAMS,
        HIDDEN2,
        DTYPE,
        PARTICLES,
        KL,
    )
    train_estimator = ("gumbel", {"tau": 1.0}, 1)
    reference_estimator = ("score+loo", {}, 8)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (self.minibatch, self.particles * int(self.config["latents"]), int(self.config["categories"]))

    @property
    def categories(self) -> int:
        return int(self.config["categories"])

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset({"log-prob", "relaxable", "categorical", "importance-weighted"})

    def build_networks(self) -> tuple[nn.Module, nn.Module]:
        size = int(self.config["latents"]) * int(self.config["categories"])
        return mirrored_mlps(self.pixels, size, size, self.config)

    def unit_logits(self, theta: Theta) -> torch.Tensor:
        return self.encode(theta).reshape(self.minibatch, int(self.config["latents"]), int(self.config["categories"]))

    def latent_space_size(self) -> float:
        return float(int(self.config["categories"])) ** int(self.config["latents"])

    def all_latents(self) -> torch.Tensor:
        latents, categories = int(self.config["latents"]), int(self.config["categories"])
        index = torch.cartesian_prod(*[torch.arange(categories, device=self.device)] * latents).reshape(-1, latents)
        return F.one_hot(index, categories).to(self.dtype)


class BernoulliVAE(_RelaxableVAE, BernoulliLatent):
    """Bernoulli VAE with 200 binary latents, linear or two 200-unit tanh layers.

    The setting of Tucker et al. (2017, REBAR), Grathwohl et al. (2018, RELAX) and Dong, Mnih &
    Tucker (2020, DisARM).
    """

    name = "bernoulli-vae"
    offers = "log-prob, relaxable, bernoulli, importance-weighted"
    summary = "Bernoulli VAE (binary latents, Bern(1/2) prior), linear or nonlinear (two tanh layers)"
    latent = Bernoulli
    event_dims = 1
    params = (
        ParamSpec("latents", int, 200, "binary latent variables", check=at_least(1), expect="an integer >= 1"),
        ParamSpec(
            "layers", str, "linear", "linear, or nonlinear (two hidden tanh layers)", choices=("linear", "nonlinear")
        ),
        *(
            p if p.name != "hidden" else ParamSpec("hidden", int, 200, p.help, check=p.check, expect=p.expect)
            for p in COMMON_PARAMS
        ),
        DTYPE,
        PARTICLES,
        KL,
    )
    train_estimator = ("disarm", {}, 1)
    reference_estimator = ("disarm", {}, 8)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (self.minibatch, self.particles * int(self.config["latents"]))

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset({"log-prob", "relaxable", "bernoulli", "importance-weighted"})

    def build_networks(self) -> tuple[nn.Module, nn.Module]:
        latents, hidden = int(self.config["latents"]), int(self.config["hidden"])
        if self.config["layers"] == "linear":
            return _mlp([self.pixels, latents], nn.Tanh), _mlp([latents, self.pixels], nn.Tanh)
        return (
            _mlp([self.pixels, hidden, hidden, latents], nn.Tanh),
            _mlp([latents, hidden, hidden, self.pixels], nn.Tanh),
        )

    def unit_logits(self, theta: Theta) -> torch.Tensor:
        return self.encode(theta)

    def latent_space_size(self) -> float:
        return 2.0 ** int(self.config["latents"])

    def all_latents(self) -> torch.Tensor:
        latents = int(self.config["latents"])
        codes = torch.arange(2**latents, device=self.device)
        return ((codes.unsqueeze(-1) >> torch.arange(latents, device=self.device)) & 1).to(self.dtype)


class GaussianVAE(VAETask):
    """VAE with a diagonal Gaussian latent and N(0, I) prior (Kingma & Welling 2014)."""

    name = "vae"
    offers = "log-prob, reparameterizable, importance-weighted"
    truth = "reference (pathwise, `reference` samples)"
    summary = "Gaussian VAE (diagonal Gaussian latent, N(0, I) prior), MLP encoder/decoder, Bernoulli pixels"
    params = (
        ParamSpec("latents", int, 20, "latent dimensions", check=at_least(1), expect="an integer >= 1"),
        *COMMON_PARAMS,
        HIDDEN2,
        DTYPE,
        PARTICLES,
        KL,
    )
    train_estimator = ("pathwise", {}, 1)
    reference_estimator = ("pathwise", {}, 8)

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset({"log-prob", "reparameterizable", "importance-weighted"})

    def build_networks(self) -> tuple[nn.Module, nn.Module]:
        latents = int(self.config["latents"])
        return mirrored_mlps(self.pixels, 2 * latents, latents, self.config)

    def _moments(self, theta: Theta) -> tuple[torch.Tensor, torch.Tensor]:
        mean, raw_scale = self.encode(theta).chunk(2, dim=-1)
        return mean, F.softplus(raw_scale) + 1e-4

    def noise(self, generator: torch.Generator, shape: tuple[int, ...]) -> torch.Tensor:
        latents = self.particles * int(self.config["latents"])
        return torch.randn(*shape, self.minibatch, latents, generator=generator, dtype=self.dtype, device=self.device)

    def sample(self, theta: Theta, noise: torch.Tensor) -> torch.Tensor:
        mean, scale = (self.tile_particles(m) for m in self._moments(theta))
        return _broadcastable(mean, noise) + _broadcastable(scale, noise) * noise

    def log_prob(self, theta: Theta, z: torch.Tensor) -> torch.Tensor:
        mean, scale = self._moments(theta)
        return _diagonal_normal_log_prob(self.tile_particles(mean), self.tile_particles(scale), z)

    def single_log_prob(self, theta: Theta, z: torch.Tensor) -> torch.Tensor:
        return _diagonal_normal_log_prob(*self._moments(theta), z)

    def kl(self, theta: Theta) -> torch.Tensor:
        mean, scale = self._moments(theta)
        return 0.5 * (mean**2 + scale**2 - 1.0 - 2.0 * torch.log(scale)).sum(-1)

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """The standard normal prior N(0, I)."""
        return (-0.5 * z**2 - 0.5 * math.log(2 * math.pi)).sum(-1)

    def latent_space_size(self) -> float:
        return math.inf


def _diagonal_normal_log_prob(mean: torch.Tensor, scale: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``log N(z; mean, diag scale²)`` summed over the last axis."""
    standard = (z - mean) / scale
    return (-0.5 * standard**2 - torch.log(scale) - 0.5 * math.log(2 * math.pi)).sum(-1)


TUPLE_VALUES = 2**22
"""Tuple-by-unit-by-particle values :func:`product_expectation` holds at once."""


def product_expectation(
    log_q: torch.Tensor, log_w: torch.Tensor, particles: int
) -> tuple[float, tuple[torch.Tensor, torch.Tensor]]:
    """The enumerated bound ``mean_u Σ_{i_1..i_M} Π_m q_u(i_m) · log (1/M) Σ_m w_u(i_m)`` and its slopes.

    ``log_q`` and ``log_w`` are ``(|Z|, U)``: one particle's log-probability and log weight of each
    configuration (:meth:`VAETask.configuration_terms`).  The sum runs over all ``|Z|^M`` ordered
    tuples, chunk by chunk, in float64; returns the value and its gradients with respect to
    ``log_q`` and ``log_w`` (float64, their shape), which the caller pulls back to θ.
    """
    size, units = log_q.shape
    q64 = log_q.to(torch.float64).requires_grad_(True)
    w64 = log_w.to(torch.float64).requires_grad_(True)
    total = 0.0
    slope_q, slope_w = torch.zeros_like(q64), torch.zeros_like(w64)
    place = size ** torch.arange(particles, device=log_q.device)
    chunk = max(1, TUPLE_VALUES // (particles * units))
    count = size**particles
    for start in range(0, count, chunk):
        index = (torch.arange(start, min(start + chunk, count), device=log_q.device)[:, None] // place) % size
        part = (torch.exp(q64[index].sum(1)) * log_mean_exp(w64[index].movedim(1, -1))).sum() / units
        grad_q, grad_w = torch.autograd.grad(part, (q64, w64))
        total += float(part.detach())
        slope_q += grad_q
        slope_w += grad_w
    return total, (slope_q, slope_w)
