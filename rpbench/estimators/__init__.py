"""Gradient estimators, one module per family.  Each module registers its estimators on import."""

# Import order is the order of columns in summaries: base estimators first, then control variates.
from rpbench.estimators import pathwise, score, delta, mvd, relaxed, rebar, lax, arm  # noqa: F401, I001
