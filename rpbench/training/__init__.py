"""Training: above tasks and estimators, which never import it (see ../shared/DESIGN.md, Training).

:func:`warm_up` brings tasks that declare :class:`~rpbench.tasks.protocols.Trainable` to the model
state they are measured at; :mod:`rpbench.runner` calls it when it plans a run and
:mod:`rpbench.truth` before it computes a truth.
"""

from rpbench.training.warmup import LEARNING_RATE, train, warm_up

__all__ = ["LEARNING_RATE", "train", "warm_up"]
