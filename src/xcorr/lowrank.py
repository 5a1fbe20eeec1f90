"""Exact low-rank structure of 2-D kernels, for the separable algorithm.

A kernel of rank r is a sum of r outer products ``col_k (kh) x row_k (kw)``; correlating with it is r pairs of
1-D passes. The rank is a property of the kernel's values, computed once per call from the (small) weight and
recorded in :attr:`Problem.weight_rank`, so the planner itself still reads shapes only.

The factors come from a cross (skeleton) decomposition with complete pivoting rather than an SVD:
``col = w[:, j*]`` and ``row = w[i*, :] / w[i*, j*]`` at the largest entry, then the same on the remainder.
For a kernel that is an outer product in floating point (Gaussian, box, Sobel, Scharr, binomial), every
``col_i * row_j`` then equals ``w_ij`` to a few ulps *of that entry*, tiny tail entries included, where an SVD
would only be accurate to ``eps * max|w|``. :func:`weight_rank` counts a rank as enough only when the factors,
rounded to the weight's dtype, reproduce every entry to within ``(kh + kw) * eps * |w_ij|`` and their terms
barely cancel (``sum_k |col_k| x |row_k| <= 4 |w|``), so the 1-D passes carry the error bound of a direct sum,
``~ (kh + kw) * eps * sum |w| |x|``: exact in the planner's sense.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Iterator

import torch
from torch import Tensor

# Kernels with more (o, c) slices than this are dense layers, where separable passes never win; skip the search.
MAX_SLICES_FOR_RANK = 256

# Kernels wider or taller than this are images themselves (gradient products, kernel fitting), where a
# transform wins over 1-D passes anyway; skip the search, whose cost grows with the kernel.
MAX_SIDE_FOR_RANK = 127

# The factors' terms may add up to at most this multiple of |w_ij| (no cancellation between terms).
MAX_TERM_GROWTH = 4.0


def rank_is_relevant(weight_shape: tuple[int, int, int, int]) -> bool:
    """Whether knowing the rank of a weight of this shape could change the plan (a 2-D kernel with few slices)."""
    o, cg, kh, kw = weight_shape
    return min(kh, kw) > 1 and max(kh, kw) <= MAX_SIDE_FOR_RANK and o * cg <= MAX_SLICES_FOR_RANK


def _cross_terms(slices: Tensor) -> Iterator[tuple[Tensor, Tensor]]:
    """Successive ``(col (S, kh), row (S, kw))`` of the complete-pivoting cross decomposition of ``slices``.

    ``slices`` (S, kh, kw) float64. Each step takes the largest remaining entry ``(i, j)`` of every slice as pivot;
    the pivot's row and column of the remainder are then exactly zero, so ``min(kh, kw)`` steps exhaust it.
    """
    remainder = slices.clone()
    count, kh, kw = remainder.shape
    batch = torch.arange(count)
    for _ in range(min(kh, kw)):
        flat = remainder.abs().flatten(1).argmax(1)
        i, j = flat // kw, flat % kw
        pivot = remainder[batch, i, j]
        col = remainder[batch, :, j]
        row = remainder[batch, i, :] / torch.where(pivot == 0, 1.0, pivot)[:, None]
        remainder -= col[:, :, None] * row[:, None, :]
        remainder[batch, i, :] = 0
        remainder[batch, :, j] = 0
        yield col, row


def factors(w: Tensor, rank: int) -> tuple[Tensor, Tensor]:
    """``cols`` (O, Cg, rank, kh) and ``rows`` (O, Cg, rank, kw), float64, with ``w ~ sum_k cols_k x rows_k``.

    Exact (to a few ulps of each entry) when every slice of ``w`` (O, Cg, kh, kw) has :func:`weight_rank` at most
    ``rank``; ``rank`` must lie in ``[0, min(kh, kw)]``.

    Example:
        >>> w = torch.outer(torch.tensor([1.0, 2.0, 1.0]), torch.tensor([-1.0, 0.0, 1.0]))[None, None]
        >>> cols, rows = factors(w, 1)
        >>> torch.equal(cols[0, 0, 0, :, None] * rows[0, 0, 0], w[0, 0].double())
        True
    """
    o, cg, kh, kw = w.shape
    if not 0 <= rank <= min(kh, kw):
        raise ValueError(f"rank must be between 0 and min(kh, kw) = {min(kh, kw)}, got {rank}")
    values = w.detach().to("cpu", torch.float64).contiguous()
    return _factors_of(values.numpy().tobytes(), (o, cg, kh, kw), rank)


@functools.lru_cache(maxsize=256)
def _factors_of(values: bytes, shape: tuple[int, int, int, int], rank: int) -> tuple[Tensor, Tensor]:
    """:func:`factors` of the float64 ``values``, memoised as :func:`_rank_of` is (the search costs ~100 us a
    step, more than a small filter's passes). The tensors are shared: read them, do not modify them."""
    o, cg, kh, kw = shape
    slices = torch.frombuffer(bytearray(values), dtype=torch.float64).reshape(o * cg, kh, kw)
    terms = list(_cross_terms(slices))[:rank]
    cols = torch.stack([c for c, _ in terms], 1) if terms else slices.new_zeros(o * cg, 0, kh)
    rows = torch.stack([r for _, r in terms], 1) if terms else slices.new_zeros(o * cg, 0, kw)
    return cols.reshape(o, cg, rank, kh), rows.reshape(o, cg, rank, kw)


def weight_rank(w: Tensor) -> int:
    """Smallest r whose :func:`factors`, in ``w``'s dtype, reproduce every (o, c) slice of ``w`` entry by entry.

    ``w`` (O, Cg, kh, kw), any float dtype. Each entry must be matched to within ``(kh + kw) * eps * |w_ij|`` by
    terms that do not cancel (see the module docstring); a slice no short sum reproduces so counts as
    ``min(kh, kw)`` (full rank).

    Example:
        >>> weight_rank(torch.outer(torch.tensor([1., 2., 1.]), torch.tensor([-1., 0., 1.]))[None, None])
        1
        >>> weight_rank(torch.eye(3)[None, None])
        3
    """
    dtype = w.dtype if w.dtype.is_floating_point else torch.float32
    values = w.detach().to("cpu", torch.float64).contiguous()
    return _rank_of(values.numpy().tobytes(), tuple(values.shape), dtype)


@functools.lru_cache(maxsize=256)
def _rank_of(values: bytes, shape: tuple[int, ...], dtype: torch.dtype) -> int:
    """:func:`weight_rank` of the float64 ``values``, memoised: image filters reuse one kernel call after call,
    and the search costs far more than a small filter's correlation."""
    o, cg, kh, kw = shape
    tol = (kh + kw) * torch.finfo(dtype).eps
    target = torch.frombuffer(bytearray(values), dtype=torch.float64).reshape(o * cg, kh, kw)
    bound = target.abs()
    recon = torch.zeros_like(target)
    magnitude = torch.zeros_like(target)
    rank = 0
    for col, row in _cross_terms(target):
        done = ((recon - target).abs() <= tol * bound) & (magnitude <= MAX_TERM_GROWTH * bound)
        if bool(done.all()):
            return rank
        term = col.to(dtype).double()[:, :, None] * row.to(dtype).double()[:, None, :]
        recon += term
        magnitude += term.abs()
        rank += 1
    return rank


_RANKS: dict[int, tuple[weakref.ref[Tensor], int, int]] = {}
"""id(weight) -> (the weight, the version its rank was found at, its rank); see :func:`_rank`."""


def _rank(w: Tensor) -> int:
    """:func:`weight_rank`, remembered for this tensor object. A low rank is found again after every update of
    ``w`` (the separable algorithm must not run on factors that no longer reproduce it); a full rank
    (``min(kh, kw)``) is kept across updates, as training keeps it full: finding it costs 1-3 ms per layer, which
    every step of a training loop would pay, and keeping it costs at worst a plan a later low rank would allow,
    never a wrong result."""
    known = _RANKS.get(id(w))
    if known is not None and known[0]() is w and (known[1] == w._version or known[2] == min(w.shape[2:])):
        return known[2]
    rank = weight_rank(w)
    if len(_RANKS) > 1024:
        _RANKS.clear()
    _RANKS[id(w)] = (weakref.ref(w), w._version, rank)
    return rank


def known_rank(w: Tensor) -> int | None:
    """The numerical rank of ``w`` (O, C // groups, kh, kw) where it could change the plan (see
    this module's docstring), else ``None``. Reads ``w``'s values, so only on real tensors (the operator's
    implementation, or eager calls); remembered per weight as :func:`_rank` says."""
    return _rank(w) if _rank_is_relevant(w.shape) else None


@functools.lru_cache(maxsize=256)
def _rank_is_relevant(shape: torch.Size) -> bool:
    o, cg, kh, kw = shape
    return rank_is_relevant((o, cg, kh, kw))
