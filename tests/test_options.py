"""Options parsed at the edge: memory sizes and devices."""

from __future__ import annotations

import pytest
import torch

from rpbench.errors import UsageError
from rpbench.options import parse_memory, resolve_device


@pytest.mark.parametrize(
    ("text", "expected"), [("512M", 512 * 2**20), ("2G", 2 * 2**30), ("1.5GiB", 3 * 2**29), ("1048576", 2**20)]
)
def test_parse_memory(text: str, expected: int) -> None:
    assert parse_memory(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "12Q", "-1G", "100K", "nanG"])
def test_parse_memory_refuses_bad_sizes(text: str) -> None:
    with pytest.raises(UsageError, match=r"--max-memory .* expected a size of at least 1M"):
        parse_memory(text)


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(UsageError, match="valid choices: cpu, cuda, cuda:N"):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="CUDA is not available"):
        resolve_device("cuda")
