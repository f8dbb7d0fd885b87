"""Moments: chunked two-pass accumulation equals the direct formulas on the whole matrix."""

from __future__ import annotations

import pytest
import torch

from rpbench.moments import Moments


def _blocks(g: torch.Tensor, widths: list[int]) -> list[torch.Tensor]:
    return list(g.split(widths, dim=1))


def _chunked(g: torch.Tensor, widths: list[int], sizes: list[int], exact: torch.Tensor | None, **kw: float):
    moments = Moments(widths, g.shape[0], exact, **kw)
    chunks = list(g.split(sizes))
    for chunk in chunks:
        moments.add(_blocks(chunk, widths))
    for chunk in chunks:
        moments.add_centred(_blocks(chunk, widths))
    return moments.result()


@pytest.mark.parametrize("budget", [2e9, 10.0])  # full P×P Gram, or a row subsample
def test_chunks_agree_with_the_direct_formulas(budget: float) -> None:
    torch.manual_seed(0)
    k, widths = 300, [3, 1, 4]
    g = (torch.randn(k, 8) * torch.linspace(0.5, 3.0, 8) + 100.0).to(torch.float32)  # large mean, small spread
    exact = torch.full((8,), 100.5, dtype=torch.float64)
    stats = _chunked(g, widths, [128, 128, 44], exact, gram_budget=budget)
    x = g.to(torch.float64)
    mean = x.mean(0)
    centred = x - mean
    torch.testing.assert_close(stats.mean, mean)
    torch.testing.assert_close(stats.column_var, x.var(0))
    torch.testing.assert_close(stats.column_m3, (centred**3).mean(0))  # the skewness of Hall's mean interval
    torch.testing.assert_close(stats.u, (centred**2).sum(1))
    torch.testing.assert_close(stats.error_sq, ((x - exact) ** 2).sum(1))
    cosine = (x @ exact) / (x.norm(dim=1) * exact.norm())
    torch.testing.assert_close(stats.cosine, cosine)
    if budget > 1e3:
        sigma = centred.T @ centred / (k - 1)
        assert stats.trace_sq == pytest.approx(float((sigma**2).sum()), rel=1e-9)
    else:  # two rows kept: the unbiased pair estimate from them
        rows = centred[:2]
        assert stats.trace_sq == pytest.approx(float((rows[0] @ rows[1]) ** 2), rel=1e-9)


def test_one_chunk_equals_many_chunks() -> None:
    torch.manual_seed(1)
    g = torch.randn(257, 5, dtype=torch.float64)
    whole = Moments.of(g, torch.zeros(5, dtype=torch.float64))
    parts = _chunked(g, [5], [100, 100, 57], torch.zeros(5, dtype=torch.float64))
    for name in ("mean", "column_var", "column_m3", "u", "error_sq", "cosine"):
        torch.testing.assert_close(getattr(whole, name), getattr(parts, name))
    assert whole.trace_sq == pytest.approx(parts.trace_sq, rel=1e-12)


def test_zero_estimate_has_zero_cosine() -> None:
    g = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    stats = Moments.of(g, torch.tensor([1.0, 0.0]))
    assert stats.cosine is not None
    torch.testing.assert_close(stats.cosine, torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))


def test_passes_must_see_every_estimate_in_order() -> None:
    moments = Moments([2], 4)
    moments.add(torch.zeros(3, 2))
    with pytest.raises(RuntimeError, match="first pass saw 3 of 4"):
        moments.add_centred(torch.zeros(3, 2))
    moments.add(torch.zeros(1, 2))
    with pytest.raises(ValueError, match="widths"):
        moments.add_centred(torch.zeros(4, 3))
    moments.add_centred(torch.zeros(4, 2))
    with pytest.raises(RuntimeError, match="the first pass is over"):
        moments.add(torch.zeros(1, 2))
    with pytest.raises(ValueError, match="more than 4"):
        moments.add_centred(torch.zeros(1, 2))
    assert moments.result().k == 4


def test_truth_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(ValueError, match="truth has 3 coordinates"):
        Moments([2], 4, torch.zeros(3))
