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


def source_indices(size: int, before: int, after: int, boundary: str) -> np.ndarray:
    """Index into an axis of length ``size`` for each of the ``before + size + after`` padded positions (int64).

    NumPy, because it is cheap on the small spans border bands and Dask windows ask for.

    Example:
        >>> source_indices(3, 2, 2, "symmetric").tolist()
        [1, 0, 0, 1, 2, 2, 1]
    """
    i = np.arange(-before, size + after, dtype=np.int64)
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


def pad(x: Tensor, padding: tuple[int, int, int, int], boundary: str, cval: float = 0.0) -> Tensor:
    """Extend the last two dims of ``x`` by (top, bottom, left, right) as ``numpy.pad(..., mode=boundary)``.

    Shapes: ``x`` (..., H, W) -> (..., H + top + bottom, W + left + right), same dtype and device;
    differentiable. ``cval`` is the fill value for ``boundary="constant"``.

    Example:
        >>> pad(torch.tensor([[1., 2., 3.]]), (0, 0, 2, 1), "reflect")
        tensor([[3., 2., 1., 2., 3., 2.]])
    """
    top, bottom, left, right = padding
    if boundary == "constant":
        return F.pad(x, (left, right, top, bottom), value=cval)
    height, width = int(x.shape[-2]), int(x.shape[-1])  # ints under jit.trace too, where sizes are tensors
    rows = index_tensor(source_indices(height, top, bottom, boundary), x.device)
    cols = index_tensor(source_indices(width, left, right, boundary), x.device)
    return x.index_select(-2, rows).index_select(-1, cols)
