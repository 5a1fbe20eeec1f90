"""Boundary extension: ``numpy.pad``'s modes on torch tensors, for any pad width.

``filter2d`` names boundaries as ``numpy.pad`` does; ``conv2d`` takes ``torch.nn.Conv2d``'s ``padding_mode``
names, mapped onto the same modes. Unlike ``torch.nn.functional.pad``, every mode accepts pads wider than the
image (reflecting or wrapping as many times as needed, exactly as ``numpy.pad``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

BOUNDARIES = ("constant", "reflect", "symmetric", "edge", "wrap")
"""``filter2d(boundary=...)`` names, as in ``numpy.pad``."""

PADDING_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}
"""``conv2d(padding_mode=...)`` names, as in ``torch.nn.Conv2d``, and the ``numpy.pad`` mode each one is."""


MAX_RUNS = 16
"""Selections in more runs than this (pads many times wider than the image, interleaved samples) gather."""


def source_indices(size: int, before: int, after: int, boundary: str, samples: int = 1) -> np.ndarray:
    """Index into an axis of length ``size`` for each of the ``before + size + after`` padded positions (int64).

    ``-1`` marks a position outside the image under ``"constant"`` (it takes the fill value). NumPy, because it is
    cheap on the small spans border bands and Dask windows ask for, and the numba kernels read it. With ``samples > 1``
    the axis holds pixels of that many interleaved values (a channels-last row) and ``size``, ``before`` and
    ``after`` count values, multiples of ``samples``: whole pixels are reflected or wrapped, each keeping its
    channels in order.

    Example:
        >>> source_indices(3, 2, 2, "symmetric").tolist()
        [1, 0, 0, 1, 2, 2, 1]
        >>> source_indices(4, 2, 0, "reflect", samples=2).tolist()  # two RGB-like pixels of two values each
        [2, 3, 0, 1, 2, 3]
    """
    if samples > 1:
        pixels = source_indices(size // samples, before // samples, after // samples, boundary)
        return np.where(pixels[:, None] < 0, -1, pixels[:, None] * samples + np.arange(samples)).ravel()
    i = np.arange(-before, size + after, dtype=np.int64)
    if boundary == "constant":  # no source: the fill value
        return np.where((i >= 0) & (i < size), i, -1)
    if boundary == "edge":
        return i.clip(0, size - 1)
    if boundary == "wrap":
        return i % size
    if boundary == "symmetric":
        m = i % (2 * size)
        return np.where(m < size, m, 2 * size - 1 - m)
    if boundary == "reflect":
        if size == 1:
            return np.zeros_like(i)
        m = i % (2 * size - 2)
        return np.where(m < size, m, 2 * size - 2 - m)
    raise ValueError(f"boundary must be one of {', '.join(map(repr, BOUNDARIES))}, got {boundary!r}")


def index_tensor(index: np.ndarray, device: torch.device) -> Tensor:
    """An index array from :func:`source_indices` as a tensor on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(index)).to(device)


def pad(x: Tensor, padding: tuple[int, int, int, int], boundary: str, cval: float = 0.0, samples: int = 1) -> Tensor:
    """Extend the last two dims of ``x`` by (top, bottom, left, right) as ``numpy.pad(..., mode=boundary)``.

    Shapes: ``x`` (..., H, W) -> (..., H + top + bottom, W + left + right), same dtype and device;
    differentiable. ``cval`` is the fill value for ``boundary="constant"``; ``samples``: the rows are pixels of
    that many interleaved values, as :func:`source_indices`.

    Example:
        >>> pad(torch.tensor([[1., 2., 3.]]), (0, 0, 2, 1), "reflect")
        tensor([[3., 2., 1., 2., 3., 2.]])
    """
    top, bottom, left, right = padding
    if boundary == "constant":
        return F.pad(x, (left, right, top, bottom), value=cval)
    height, width = int(x.shape[-2]), int(x.shape[-1])  # ints under jit.trace too, where sizes are tensors
    rows = take(x, -2, source_indices(height, top, bottom, boundary))
    return take(rows, -1, source_indices(width, left, right, boundary, samples)).contiguous()


def take(x: Tensor, dim: int, index: np.ndarray) -> Tensor:
    """``x.index_select(dim, index)``, as a few slices (runs of ascending, descending or repeated indices) joined
    where the index has at most :data:`MAX_RUNS` of them, since torch's gather costs ~10 ns an element, ten times
    a copy. Differentiable.

    Example:
        >>> take(torch.arange(5.0), -1, np.array([2, 1, 0, 1, 2, 3, 4, 4])).tolist()
        [2.0, 1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 4.0]
    """
    if torch.compiler.is_compiling():  # dynamo traces NumPy as tensors: the runs below would be data-dependent
        return x.index_select(dim, index_tensor(index, x.device))
    steps, i = np.diff(index), 0
    pieces: list[Tensor] = []
    while i < len(index) and len(pieces) <= MAX_RUNS:
        step = int(steps[i]) if i < len(steps) and abs(int(steps[i])) <= 1 else 1
        other = np.flatnonzero(steps[i:] != step)
        stop = i + 1 + int(other[0]) if len(other) else len(index)
        first, last = int(index[i]), int(index[stop - 1])
        piece = x.narrow(dim, min(first, last), abs(last - first) + 1)
        if step == 0:
            piece = piece.expand(*piece.shape[:dim], stop - i, *piece.shape[dim:][1:])
        pieces.append(piece.flip(dim) if step == -1 else piece)
        i = stop
    if len(pieces) > MAX_RUNS:
        return x.index_select(dim, index_tensor(index, x.device))
    return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim)
