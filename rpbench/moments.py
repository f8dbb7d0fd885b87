"""Sufficient statistics of K gradient estimates, accumulated chunk by chunk in float64.

The metrics of :mod:`rpbench.metrics` need, per parameter group, the mean estimate, the centred
sums of squares and of cubes of each coordinate (the cubes give the skewness that Hall's interval
for a one-coordinate mean corrects for), each estimate's squared distance from the mean (``u_k``), from
the truth, and its cosine with the truth, and ``tr(Σ²)`` (the shape of the confidence ball).
None of that needs the ``(K, P)`` matrix at once, so K estimates can be drawn in chunks whose size
follows a memory budget (:mod:`rpbench.engine`) and reduced here:

1. :meth:`Moments.add` — first pass over the chunks: float64 sums, hence the exact mean;
2. :meth:`Moments.add_centred` — second pass over the same chunks (the engine redraws them from
   the same seeds): squares (and cubes) about that mean.  Centring on the final mean avoids the cancellation
   of ``Σg² − K·ḡ²`` that a one-pass formula suffers when the mean is large next to the spread.

A chunk is a list of 2-D blocks ``(c, p_i)``, one per parameter tensor, which are never joined
into one ``(c, P)`` matrix; where the whole cell fits in one chunk, both passes read the same
tensors.  The truth-dependent sums reuse the centred block: with ``d = g − ḡ`` and ``δ = ḡ − x``,
``‖g − x‖² = ‖d‖² + 2 d·δ + ‖δ‖²`` and ``g·x = d·x + ḡ·x``, one small matrix product per block.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

GRAM_BUDGET = 2e9
"""Multiply-adds allowed for ``tr(Σ²)``: the full ``P × P`` Gram matrix below it, a row subsample above."""

SUBSAMPLE_BYTES = 64 * 2**20
"""Memory kept for the centred rows of the ``tr(Σ²)`` subsample."""


@dataclass(frozen=True)
class GroupMoments:
    """What the metrics read: the reduced statistics of one group's K estimates."""

    k: int
    mean: torch.Tensor
    """Mean estimate, ``(P,)`` float64."""
    column_var: torch.Tensor
    """Unbiased per-coordinate variance, ``(P,)``."""
    u: torch.Tensor
    """``‖g_k − ḡ‖²`` per estimate, ``(K,)``."""
    trace_sq: float
    """Estimate of ``tr(Σ²)``."""
    error_sq: torch.Tensor | None = None
    """``‖g_k − x‖²`` per estimate against the truth x (``None`` without a truth)."""
    cosine: torch.Tensor | None = None
    """Cosine of each estimate with the truth (0 for a zero estimate; ``None`` without a truth)."""
    nonfinite: int = 0
    """Estimates with a NaN or infinite coordinate (the statistics are then meaningless)."""
    column_m3: torch.Tensor | None = None
    """Per-coordinate third central moment ``Σ_k (g_k − ḡ)³ / K``, ``(P,)`` (``None``: not accumulated)."""

    @property
    def p(self) -> int:
        return self.mean.numel()


def blocks_of(chunk: torch.Tensor | Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """A chunk as 2-D float blocks ``(c, p_i)``: a ``(c, …)`` tensor or a list of them (views, no copy)."""
    tensors = [chunk] if isinstance(chunk, torch.Tensor) else list(chunk)
    return [t.detach().reshape(t.shape[0], -1) for t in tensors]


class Moments:
    """Accumulates one group's statistics over chunks of estimates (see the module docstring).

    ``sizes`` are the widths ``p_i`` of the group's blocks, ``samples`` the total K, ``exact``
    the flattened truth (or ``None``).  Call :meth:`add` for every chunk, then
    :meth:`add_centred` for the same chunks in the same order, then :meth:`result`.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        samples: int,
        exact: torch.Tensor | None = None,
        device: torch.device | str = "cpu",
        gram_budget: float = GRAM_BUDGET,
    ) -> None:
        self.sizes = list(sizes)
        self.p = sum(self.sizes)
        self.samples = samples
        self.device = torch.device(device)
        self._sums = [self._zeros(size) for size in self.sizes]
        self._count = 0
        self._nonfinite = 0
        self._centred = 0
        self._mean: list[torch.Tensor] | None = None
        self._squares = [self._zeros(size) for size in self.sizes]
        self._cubes = [self._zeros(size) for size in self.sizes]
        self._u = self._zeros(samples)
        self._full_gram = self.p * self.p * samples <= gram_budget
        self._gram = self._zeros(self.p, self.p) if self._full_gram else None
        rows = math.sqrt(gram_budget / max(self.p, 1))
        self._rows = max(2, min(samples, int(rows), SUBSAMPLE_BYTES // (8 * max(self.p, 1))))
        self._kept: list[torch.Tensor] = []
        self._truth: list[torch.Tensor] | None = None
        if exact is not None:
            flat = exact.detach().to(dtype=torch.float64, device=self.device).reshape(-1)
            if flat.numel() != self.p:
                raise ValueError(f"truth has {flat.numel()} coordinates, the estimates {self.p}")
            self._truth = list(flat.split(self.sizes))
            self._error_sq = self._zeros(samples)
            self._dot = self._zeros(samples)
            self._norm_sq = self._zeros(samples)

    def _zeros(self, *size: int) -> torch.Tensor:
        return torch.zeros(*size, dtype=torch.float64, device=self.device)

    @classmethod
    def of(cls, estimates: torch.Tensor | Sequence[torch.Tensor], exact: torch.Tensor | None = None) -> GroupMoments:
        """The statistics of estimates held in memory at once (one chunk, both passes)."""
        blocks = blocks_of(estimates)
        moments = cls([b.shape[1] for b in blocks], blocks[0].shape[0], exact, blocks[0].device)
        moments.add(blocks)
        moments.add_centred(blocks)
        return moments.result()

    def add(self, chunk: torch.Tensor | Sequence[torch.Tensor]) -> None:
        """First pass: one chunk's sums."""
        if self._mean is not None:
            raise RuntimeError("add() after add_centred(): the first pass is over")
        blocks = self._check(chunk, self._count)
        finite = torch.ones(blocks[0].shape[0], dtype=torch.bool, device=blocks[0].device)
        for total, block in zip(self._sums, blocks, strict=True):
            total += block.sum(0, dtype=torch.float64)
            finite &= torch.isfinite(block).all(1)
        self._nonfinite += int((~finite).sum())
        self._count += blocks[0].shape[0]

    def add_centred(self, chunk: torch.Tensor | Sequence[torch.Tensor]) -> None:
        """Second pass: squares of one chunk about the mean of all K (same chunks, same order)."""
        if self._mean is None:
            if self._count != self.samples:
                raise RuntimeError(f"first pass saw {self._count} of {self.samples} estimates")
            self._mean = [s / self.samples for s in self._sums]
        blocks = self._check(chunk, self._centred)
        start = self._centred
        c = blocks[0].shape[0]
        rows = slice(start, start + c)
        kept = max(0, min(c, self._rows - start))
        centred_blocks = []
        for i, block in enumerate(blocks):
            d = block.to(torch.float64) - self._mean[i]
            squares = d * d
            self._squares[i] += squares.sum(0)
            self._cubes[i] += (squares * d).sum(0)
            row_squares = squares.sum(1)
            del squares
            self._u[rows] += row_squares
            if self._truth is not None:
                truth, mean = self._truth[i], self._mean[i]
                projected = d @ torch.stack([mean - truth, truth, mean], dim=1)  # (c, 3)
                delta_sq, mean_dot_truth, mean_sq = (
                    float((mean - truth) @ (mean - truth)),
                    float(mean @ truth),
                    float(mean @ mean),
                )
                self._error_sq[rows] += row_squares + 2.0 * projected[:, 0] + delta_sq
                self._dot[rows] += projected[:, 1] + mean_dot_truth
                self._norm_sq[rows] += row_squares + 2.0 * projected[:, 2] + mean_sq
            if self._full_gram:
                centred_blocks.append(d)
            elif kept:
                centred_blocks.append(d[:kept])
        if self._gram is not None:  # the full Gram matrix (self._full_gram)
            joined = torch.cat(centred_blocks, dim=1)
            self._gram += joined.T @ joined
        elif kept:
            self._kept.append(torch.cat(centred_blocks, dim=1))
        self._centred += c

    def result(self) -> GroupMoments:
        """The reduced statistics, once both passes have seen all K estimates."""
        if self._centred != self.samples:
            raise RuntimeError(f"second pass saw {self._centred} of {self.samples} estimates")
        k = self.samples
        assert self._mean is not None
        mean = torch.cat(self._mean)
        column_var = torch.cat(self._squares) / (k - 1)
        if self._gram is not None:
            trace_sq = float((self._gram**2).sum()) / (k - 1) ** 2
        else:  # tr(Σ²) = E[(c_i·c_j)²] for independent centred rows: mean over pairs of the kept rows
            rows = torch.cat(self._kept)
            gram = rows @ rows.T
            n = rows.shape[0]
            trace_sq = float((gram**2).sum() - (torch.diagonal(gram) ** 2).sum()) / (n * (n - 1))
        error_sq = cosine = None
        if self._truth is not None:
            error_sq = self._error_sq.clamp_min(0.0)
            truth_norm = float(torch.cat(self._truth).norm())
            norms = self._norm_sq.clamp_min(0.0).sqrt()
            cosine = torch.where(norms > 0, self._dot / (norms.clamp_min(1e-300) * max(truth_norm, 1e-300)), 0.0)
        column_m3 = torch.cat(self._cubes) / k
        return GroupMoments(
            k, mean, column_var, self._u.clone(), trace_sq, error_sq, cosine, self._nonfinite, column_m3
        )

    def _check(self, chunk: torch.Tensor | Sequence[torch.Tensor], seen: int) -> list[torch.Tensor]:
        blocks = blocks_of(chunk)
        widths = [b.shape[1] for b in blocks]
        if widths != self.sizes:
            raise ValueError(f"chunk blocks have widths {widths}, expected {self.sizes}")
        if seen + blocks[0].shape[0] > self.samples:
            raise ValueError(f"more than {self.samples} estimates")
        return blocks
