"""Freed blocks kept for reuse (glibc malloc), so that K × P fresh floats do not page-fault on every call.

Every estimator call writes its K per-estimate gradients into fresh tensors: K × P floats, 112 MB a
chunk at Jang et al.'s scale (24 estimates of 1.17 M parameters), single blocks of 38.5 MB.  glibc
serves a block at or above its mmap threshold with a fresh ``mmap`` and unmaps it when it is freed;
the threshold follows the largest block freed so far, but never above 32 MiB
(``DEFAULT_MMAP_THRESHOLD_MAX`` on 64-bit), and the top of the heap beyond the trim threshold (twice
the mmap threshold) is given back as well.  So each call faults its output in again, page by page
(38.5 MB zero-filled in 30–44 ms on the two-core EPYC machine of the README, against 2.5–3.5 ms for
a reused block).

:func:`keep_freed_blocks` raises both thresholds to what glibc's own rule would choose for a block of
``largest`` bytes (a chunk's memory budget, ``--max-memory``): blocks up to that size then come
from the heap and are reused after they are freed.  Only where memory lives changes, never a value
(torch aligns every block to 64 bytes either way).  Peak RSS stays what the live tensors need; what
changes is that a process keeps its heap at that peak between cells instead of returning it.

Nothing happens off glibc, or where the user set ``MALLOC_MMAP_THRESHOLD_`` or
``MALLOC_TRIM_THRESHOLD_`` (their choice wins).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
"""``mallopt`` parameters, from glibc's ``malloc.h``."""

USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")

_kept = 0
"""The largest block size this process already keeps (0: glibc's defaults)."""


def keep_freed_blocks(largest: int) -> bool:
    """Let glibc keep and reuse freed blocks of up to ``largest`` bytes; whether the thresholds are set.

    Idempotent and monotone: a smaller ``largest`` than before leaves the thresholds as they are.
    """
    global _kept
    if largest <= _kept:
        return True
    if not sys.platform.startswith("linux") or any(name in os.environ for name in USER_SETTINGS):
        return False
    libc = _glibc()
    if libc is None:
        return False
    # The trim threshold first: were the mmap threshold refused, a larger trim threshold alone only keeps
    # more of the heap's top (glibc's dynamic rule is then left as it is).
    if not libc.mallopt(M_TRIM_THRESHOLD, min(2 * largest, 2**31 - 1)):
        return False
    if not libc.mallopt(M_MMAP_THRESHOLD, min(largest, 2**31 - 1)):
        return False
    _kept = largest
    return True


def _glibc() -> ctypes.CDLL | None:
    """The C library, if it is glibc (``mallopt`` with glibc's parameter numbers)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()
    except (OSError, AttributeError):
        return None
    libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    libc.mallopt.restype = ctypes.c_int
    return libc
