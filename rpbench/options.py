"""Options given as text at the edge (the command line, a suite, ``rpbench.run``'s keywords), parsed.

The engine and the runner take parsed values (a ``torch.device``, a byte count); this module turns
what a user typed into them, with one-line :class:`~rpbench.errors.UsageError` messages naming the
valid choices.
"""

from __future__ import annotations

import re

import torch

from rpbench.errors import UsageError

MIN_MEMORY = 2**20
"""The smallest ``--max-memory`` accepted: 1 MiB."""


def resolve_device(text: str) -> torch.device:
    """``cpu``, ``cuda`` or ``cuda:N``; a :class:`UsageError` where it is not available here."""
    text = text.strip().lower()
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {text}: CUDA is not available on this machine; valid choices: cpu")
        device = torch.device(text)
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            choices = ", ".join(["cpu", "cuda"] + [f"cuda:{i}" for i in range(count)])
            raise UsageError(f"--device {text}: no such GPU ({count} visible); valid choices: {choices}")
        return device
    raise UsageError(f"--device {text!r} is not a device; valid choices: cpu, cuda, cuda:N")


SIZE_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 2**10, "kib": 2**10, "m": 2**20, "mb": 2**20, "mib": 2**20}
SIZE_UNITS |= {"g": 2**30, "gb": 2**30, "gib": 2**30, "t": 2**40, "tb": 2**40, "tib": 2**40}


def parse_memory(text: str | int) -> int:
    """``512M``, ``2G``, ``1.5GiB`` or a byte count as bytes (binary units); a :class:`UsageError` if not."""
    raw = str(text).strip()
    match = re.fullmatch(r"([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)", raw)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in SIZE_UNITS or float(match.group(1)) * SIZE_UNITS[unit] < MIN_MEMORY:
        raise UsageError(
            f"--max-memory {raw!r}: expected a size of at least 1M, such as 256M, 512MiB or 2G (units: K, M, G, T)"
        )
    return int(float(match.group(1)) * SIZE_UNITS[unit])
