"""rpbench: measure Monte Carlo gradient estimators side by side against exact gradients."""

__version__ = "0.1.0"
