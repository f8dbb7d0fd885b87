"""Task families.  Each module registers its tasks on import."""

from rpbench.tasks import gaussian, vae  # noqa: F401
