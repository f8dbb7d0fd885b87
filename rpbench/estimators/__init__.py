"""Gradient estimators, one module per family.  Each module registers its estimators on import."""

# Import order is the order of columns in summaries: base estimators first, then control variates.
from rpbench.estimators import pathwise, score, nvil, delta, mvd, relaxed, straight_through  # noqa: F401, I001
from rpbench.estimators import rebar, lax, muprop, arm, indecater, vimco, dreg  # noqa: F401
