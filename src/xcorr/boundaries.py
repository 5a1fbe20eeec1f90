"""Correlation with any boundary at the speed of zero padding: no padded copy of the image.

Only the output pixels near the edge read outside the image, and only they depend on the boundary. So
:func:`correlate_extended` computes the whole output once with zero padding (which the algorithms handle inside
their kernels, by border strips), then recomputes the four border bands (the top and bottom rows, the left and
right columns between them, each as thin as the padding) from small extended windows of the image, built by
indexing with ``numpy.pad``'s rule for the boundary. The extra work is the bands, a few percent of the image;
a padded copy of a large image costs as much as the filter itself.

Small images (under :data:`BAND_MIN_ELEMENTS` input elements) take the padded copy instead: there, five engine
calls cost more than one copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from xcorr.autograd import correlate
from xcorr.padding import index_tensor, pad, source_indices
from xcorr.problem import Pair, Quad

BAND_MIN_ELEMENTS = 2**16
"""Inputs smaller than this are padded whole: one engine call costs ~50 us, a padded copy ~16 ns per element."""
MAX_RUNS = 16
"""Column selections in more runs than this (pads many times wider than the image) gather element by element."""


def correlate_extended(
    x: Tensor,
    w: Tensor,
    *,
    padding: Quad,
    boundary: str,
    cval: float = 0.0,
    bias: Tensor | None = None,
    stride: Pair = (1, 1),
    dilation: Pair = (1, 1),
    groups: int = 1,
    algo: str = "auto",
) -> Tensor:
    """``correlate(numpy.pad(x, padding, boundary), w, ...)``, differentiable, without padding ``x`` whole.

    Args:
        x: (N, C, H, W); ``w`` (O, C // groups, kh, kw); ``bias``, ``stride``, ``dilation``, ``groups``,
            ``algo`` as :func:`xcorr.autograd.correlate`.
        padding: (top, bottom, left, right), any width (wider than the image too).
        boundary: a ``numpy.pad`` mode of :data:`xcorr.padding.BOUNDARIES`; ``cval`` the value for ``"constant"``.

    Returns:
        (N, O, Ho, Wo), as the engine returns it for the padded input.

    Example:
        >>> import numpy as np
        >>> x, w = torch.randn(1, 1, 300, 300, dtype=torch.float64), torch.randn(1, 1, 5, 5, dtype=torch.float64)
        >>> y = correlate_extended(x, w, padding=(2, 2, 2, 2), boundary="reflect")
        >>> padded = np.pad(x.numpy(), ((0, 0), (0, 0), (2, 2), (2, 2)), mode="reflect")
        >>> bool(torch.allclose(y, correlate(torch.from_numpy(padded), w)))
        True
    """
    settings: dict[str, Any] = {"bias": bias, "stride": stride, "dilation": dilation, "groups": groups, "algo": algo}
    if not any(padding) or (boundary == "constant" and cval == 0):
        return correlate(x, w, padding=padding, **settings)
    (height, width), (kh, kw) = _sizes(x), _sizes(w)
    extent = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    rows = _interior(height, padding[0], padding[1], extent[0], stride[0])
    cols = _interior(width, padding[2], padding[3], extent[1], stride[1])
    if x.numel() < BAND_MIN_ELEMENTS or rows[1] >= rows[2] or cols[1] >= cols[2]:
        return correlate(pad(x, padding, boundary, cval), w, **settings)
    y = correlate(x, w, padding=padding, **settings)
    if y.requires_grad:  # the bands are written in place: into a tensor autograd owns, not the operator's output
        y = y.clone()
    (out_rows, row_lo, row_hi), (out_cols, col_lo, col_hi) = rows, cols
    top_and_bottom = (((0, row_lo), (0, out_cols)), ((row_hi, out_rows), (0, out_cols)))
    left_and_right = (((row_lo, row_hi), (0, col_lo)), ((row_lo, row_hi), (col_hi, out_cols)))
    for pair in (top_and_bottom, left_and_right):
        bands = [(r, c) for r, c in pair if r[0] < r[1] and c[0] < c[1]]
        windows = [
            _extended_window(
                x,
                padding,
                boundary,
                cval,
                (r0 * stride[0], (r1 - 1) * stride[0] + extent[0]),
                (c0 * stride[1], (c1 - 1) * stride[1] + extent[1]),
            )
            for (r0, r1), (c0, c1) in bands
        ]
        if len(windows) == 2 and windows[0].shape == windows[1].shape:  # one engine call for both
            results = _correlate_band(torch.cat(windows), w, settings).chunk(2)
        else:
            results = tuple(_correlate_band(window, w, settings) for window in windows)
        for ((r0, r1), (c0, c1)), result in zip(bands, results, strict=True):
            y[..., r0:r1, c0:c1] = result
    return y


def _correlate_band(window: Tensor, w: Tensor, settings: dict[str, Any]) -> Tensor:
    """One band's correlation; a tall, narrow band transposed, as rows of a few pixels sweep slowly."""
    if window.shape[-1] >= window.shape[-2]:
        return correlate(window, w, **settings)
    stride, dilation = settings["stride"], settings["dilation"]
    swapped = {**settings, "stride": stride[::-1], "dilation": dilation[::-1]}
    result = correlate(window.transpose(-1, -2).contiguous(), w.transpose(-1, -2), **swapped)
    return result.transpose(-1, -2)


def _sizes(x: Tensor) -> Pair:
    """The last two sizes of ``x`` as ints (under ``torch.jit.trace`` sizes are tensors)."""
    return int(x.shape[-2]), int(x.shape[-1])


def _interior(size: int, before: int, after: int, extent: int, stride: int) -> tuple[int, int, int]:
    """Output size along an axis, and the range ``[lo, hi)`` of outputs whose window lies inside the image."""
    out = (size + before + after - extent) // stride + 1
    lo = min(out, -(-before // stride))
    hi = max(lo, min(out, (before + size - extent) // stride + 1))
    return out, lo, hi


def _extended_window(x: Tensor, padding: Quad, boundary: str, cval: float, rows: Pair, cols: Pair) -> Tensor:
    """Rows ``rows[0]:rows[1]`` and columns ``cols[0]:cols[1]`` of ``x`` extended by ``padding`` (padded
    coordinates): a slice along an axis where the span lies inside the image, else an index selection, rows
    first for the top and bottom bands (a few full-width rows), columns first for the side bands."""
    (height, width), (top, bottom, left, right) = _sizes(x), padding
    if rows[1] - rows[0] < height:
        window = _select(x, -2, height, top, bottom, rows, boundary, cval)
        return _select(window, -1, width, left, right, cols, boundary, cval)
    window = _select(x, -1, width, left, right, cols, boundary, cval)
    return _select(window, -2, height, top, bottom, rows, boundary, cval)


def _select(x: Tensor, dim: int, size: int, before: int, after: int, span: Pair, boundary: str, cval: float) -> Tensor:
    """Positions ``span`` (padded coordinates) of axis ``dim`` (``size`` long, extended by ``before``/``after``)."""
    start, stop = span[0] - before, span[1] - before  # image coordinates
    if start >= 0 and stop <= size:
        return x.narrow(dim, start, stop - start)
    if boundary != "constant":
        return _take(x, dim, source_indices(size, before, after, boundary)[span[0] : span[1]])
    position = np.arange(start, stop)
    window = _take(x, dim, position.clip(0, size - 1))
    outside = index_tensor(np.flatnonzero((position < 0) | (position >= size)), x.device)
    return window.index_fill(dim, outside, cval)


def _take(x: Tensor, dim: int, index: np.ndarray) -> Tensor:
    """``x.index_select(dim, index)``; along the last axis as a few slices (runs of ascending, descending or
    repeated indices) joined, since torch's column gather costs ~10 ns an element, ten times a copy."""
    if dim != -1:
        return x.index_select(dim, index_tensor(index, x.device))
    steps, i = np.diff(index), 0
    pieces: list[Tensor] = []
    while i < len(index) and len(pieces) <= MAX_RUNS:
        step = int(steps[i]) if i < len(steps) and abs(int(steps[i])) <= 1 else 1
        other = np.flatnonzero(steps[i:] != step)
        stop = i + 1 + int(other[0]) if len(other) else len(index)
        first, last = int(index[i]), int(index[stop - 1])
        piece = x.narrow(-1, min(first, last), abs(last - first) + 1)
        if step == 0:
            piece = piece.expand(*piece.shape[:-1], stop - i)
        pieces.append(piece.flip(-1) if step == -1 else piece)
        i = stop
    if len(pieces) > MAX_RUNS:
        return x.index_select(dim, index_tensor(index, x.device))
    return torch.cat(pieces, -1)
