"""rpbench.allocator: freed blocks kept for reuse (no page faults on the next call), the user's settings
respected, and the estimates bit for bit what they were with glibc's defaults."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rpbench import allocator

ROOT = Path(__file__).resolve().parents[1]
GLIBC = sys.platform.startswith("linux") and allocator._glibc() is not None
needs_glibc = pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")

FAULTS = """
import resource, sys, torch
from rpbench.allocator import keep_freed_blocks
if sys.argv[1] == "keep":
    assert keep_freed_blocks(512 * 2**20)
for _ in range(10):  # the heap settles: a freed block fits the next request once its neighbours are free too
    torch.zeros(10 * 2**20)  # 40 MB: above the 32 MiB that glibc's own threshold ever reaches
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    torch.zeros(10 * 2**20)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

ESTIMATES = """
import hashlib, sys, torch
from rpbench.allocator import keep_freed_blocks
from rpbench.engine import draw_chunk
from rpbench.registry import get_estimator, get_task, load_builtins
load_builtins()
if sys.argv[1] == "keep":
    assert keep_freed_blocks(512 * 2**20)
digest = hashlib.sha256()
for task_name, name, batch in [("discrete-vae", "gumbel", 1), ("discrete-vae", "score+loo", 2),
                               ("bernoulli-vae", "disarm", 1), ("vae", "pathwise", 1)]:
    cls = get_task(task_name)
    task = cls({p.name: p.default_values[0] for p in cls.params}, torch.device("cpu"))
    est_cls = get_estimator(name)
    est = est_cls({p.name: p.default_values[0] for p in est_cls.params})
    for index in range(3):
        for blocks in draw_chunk(task, est, [40, 40, 40], batch, 11, index).values():
            for block in blocks:
                digest.update(block.contiguous().numpy().tobytes())
print(digest.hexdigest())
"""


def _run(code: str, mode: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in allocator.USER_SETTINGS}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    out = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


@needs_glibc
@pytest.mark.slow
def test_a_freed_block_is_reused_without_page_faults() -> None:
    default, kept = int(_run(FAULTS, "default")), int(_run(FAULTS, "keep"))
    assert default > 5 * 9000  # 40 MB faulted in again on every call: ~9,800 pages each
    assert kept < default / 20


@needs_glibc
@pytest.mark.slow
def test_the_estimates_are_bit_for_bit_those_of_glibc_defaults() -> None:
    assert _run(ESTIMATES, "keep") == _run(ESTIMATES, "default")


@needs_glibc
def test_it_is_monotone_and_respects_the_users_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    budget = 512 * 2**20  # the engine's default chunk budget, so the test process is left as a run leaves it
    monkeypatch.setattr(allocator, "_kept", 0)
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert not allocator.keep_freed_blocks(budget)  # the user's choice wins
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    assert allocator.keep_freed_blocks(budget) and allocator._kept == budget
    assert allocator.keep_freed_blocks(2**20) and allocator._kept == budget  # never lowered
