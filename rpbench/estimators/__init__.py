"""Gradient estimators, one module per family.  Each module registers its estimators on import."""

from rpbench.estimators import delta, mvd, pathwise, score  # noqa: F401
