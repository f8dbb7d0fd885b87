"""Task families, one module each.  They know nothing of estimators or of the registry.

:mod:`rpbench.registry` registers :data:`BUILTIN` with ``register_task``, exactly as a user's
plugin registers its own tasks (so the same checks apply to ours).
"""

from rpbench.tasks.base import Task
from rpbench.tasks.bernoulli_toy import BernoulliToy
from rpbench.tasks.gaussian import GaussianTask
from rpbench.tasks.implicit import BetaTask, GammaTask
from rpbench.tasks.vae import BernoulliVAE, DiscreteVAE, GaussianVAE

BUILTIN: tuple[type[Task], ...] = (
    GaussianTask,
    GammaTask,
    BetaTask,
    BernoulliToy,
    DiscreteVAE,
    BernoulliVAE,
    GaussianVAE,
)
"""The built-in tasks, in the order ``list`` shows them."""
