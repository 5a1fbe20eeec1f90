"""Correlation with any boundary at the speed of zero padding, without a padded copy where one would cost.

:func:`correlate_extended` takes one of three roads:

- **in the kernels**: where the planner runs the direct algorithm or the FFT and nothing records the call (no
  gradient, tracing or autocast: image filtering), they read the boundary themselves: the direct kernels' rows
  and border strips, the FFT's border tiles, from reflected, wrapped or repeated rows and columns instead of
  zeros (:func:`xcorr.algo.direct.run_extended`, :func:`xcorr.algo.fft.run_extended`), at the cost of zero
  padding;
- **a padded copy** (slices joined, about 1 ns per element): for the FFT where it must be recorded, and for small
  images (under :data:`BAND_MIN_ELEMENTS` elements), where the bands' fixed cost exceeds the copy;
- **border bands** everywhere else (separable passes, torch's kernel, gradients, compile): only the output
  pixels near the edge read outside the image, and only they depend on the boundary, so the whole output is
  computed once with zero padding, then the four border bands (the top and bottom rows, the left and right
  columns between them, each as thin as the padding) are recomputed from small extended windows of the image,
  built with ``numpy.pad``'s rule for the boundary. Differentiable: gradients flow through both passes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from xcorr.algo import get_algorithm
from xcorr.algo.registry import Algorithm
from xcorr.autograd import correlate, problem_for, product_runner, traced
from xcorr.padding import index_tensor, pad, source_indices, take
from xcorr.planner import plan_problem
from xcorr.problem import Pair, Problem, Quad

BAND_MIN_ELEMENTS = 3 * 2**18
"""Inputs smaller than this are padded whole: the bands' four windows and two extra engine calls cost a fixed
~1.5 ms, a padded copy ~1 ns per element; 5x5 reflect on 724x724 float32 took 1.9 ms padded, 2.9 ms in bands,
on 1024x1024 5.1 ms padded, 4.4 ms in bands (2 threads)."""


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
    samples: int = 1,
    result_dtype: torch.dtype | None = None,
) -> Tensor:
    """``correlate(numpy.pad(x, padding, boundary), w, ...)``, differentiable, without padding ``x`` whole.

    Args:
        x: (N, C, H, W), float, or 8/16-bit samples (:data:`xcorr.arguments.SAMPLE_DTYPES`, computed in ``w``'s
            dtype: read as they are where the direct kernels run, else copied to float first); ``w`` (O,
            C // groups, kh, kw); ``bias``, ``stride``, ``dilation``, ``groups``, ``algo`` as
            :func:`xcorr.autograd.correlate`.
        padding: (top, bottom, left, right), any width (wider than the image too).
        boundary: a ``numpy.pad`` mode of :data:`xcorr.padding.BOUNDARIES`; ``cval`` the value for ``"constant"``.
        samples: the rows of ``x`` are pixels of this many interleaved values (channels last, filtered with the
            dilation ``(1, samples)``): the boundary extends whole pixels, as :func:`xcorr.padding.source_indices`.
        result_dtype: an integer dtype the kernels that read the boundary round the result into (half to even,
            saturated: :mod:`xcorr.algo.saturation`), so no float result is written and read back; the other
            roads, and any call with a ``bias``, return the float result, for the caller to round.

    Returns:
        (N, O, Ho, Wo), as the engine returns it for the padded input (in ``result_dtype`` where it was applied).

    Example:
        >>> import numpy as np
        >>> x, w = torch.randn(1, 1, 300, 300, dtype=torch.float64), torch.randn(1, 1, 5, 5, dtype=torch.float64)
        >>> y = correlate_extended(x, w, padding=(2, 2, 2, 2), boundary="reflect")
        >>> padded = np.pad(x.numpy(), ((0, 0), (0, 0), (2, 2), (2, 2)), mode="reflect")
        >>> bool(torch.allclose(y, correlate(torch.from_numpy(padded), w)))
        True
    """
    settings: dict[str, Any] = {"bias": bias, "stride": stride, "dilation": dilation, "groups": groups, "algo": algo}
    runner = plain_runner(x, w, padding=padding, boundary=boundary, cval=cval, samples=samples, **settings)
    if runner is not None:
        return runner(x, w, bias, result_dtype)
    zeros = not any(padding) or (boundary == "constant" and cval == 0)
    if zeros and x.is_floating_point():
        return correlate(x, w, padding=padding, **settings)
    planned = _planned_without_autograd(x, w, padding, settings)
    x = x.to(w.dtype)  # 8- or 16-bit samples that another algorithm runs: a float copy
    if zeros:
        return correlate(x, w, padding=padding, **settings)
    (height, width), (kh, kw) = _sizes(x), _sizes(w)
    extent = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    rows = _interior(height, padding[0], padding[1], extent[0], stride[0])
    cols = _interior(width, padding[2], padding[3], extent[1], stride[1])
    # A transform's time per pixel does not grow with the kernel, the bands' (direct sums) does: pad instead.
    transform = planned is not None and planned[0].name == "fft"  # here a nonzero cval: padded, not read in the tiles
    if transform or x.numel() < BAND_MIN_ELEMENTS or rows[1] >= rows[2] or cols[1] >= cols[2]:
        return correlate(pad(x, padding, boundary, cval, samples), w, **settings)
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
                (boundary, cval, samples),
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


Runner = Callable[[Tensor, Tensor, "Tensor | None", "torch.dtype | None"], Tensor]
"""``(x, w, bias, result_dtype) -> y``, as :func:`correlate_extended` computes it for tensors like the ones it was
made for (shapes, dtypes, layout, device, the kernel's rank where it matters)."""


def plain_runner(
    x: Tensor,
    w: Tensor,
    *,
    padding: Quad,
    boundary: str,
    cval: float = 0.0,
    samples: int = 1,
    bias: Tensor | None = None,
    stride: Pair = (1, 1),
    dilation: Pair = (1, 1),
    groups: int = 1,
    algo: str = "auto",
) -> Runner | None:
    """What :func:`correlate_extended` runs for tensors like ``x`` and ``w`` (the arguments as its own), where the
    plan alone decides it: nothing records the call (no gradient, tracing or autocast; CPU), and the padding is
    zeros on float data (the planned algorithm's product) or read inside the planned algorithm's kernels
    (:attr:`~xcorr.algo.registry.Algorithm.run_extended`). ``None`` where a copy, bands or autograd take part.

    A caller that calls with the same shapes, settings and planner state again may call the runner again: it
    holds the plan, not the data (``filter2d`` remembers it per call key).

    Example:
        >>> x, w = torch.randn(1, 1, 64, 64), torch.randn(1, 1, 3, 3)
        >>> run = plain_runner(x, w, padding=(1, 1, 1, 1), boundary="reflect")
        >>> y = run(x, w, None, None)
        >>> bool(torch.allclose(y, correlate_extended(x, w, padding=(1, 1, 1, 1), boundary="reflect")))
        True
    """
    settings: dict[str, Any] = {"bias": bias, "stride": stride, "dilation": dilation, "groups": groups, "algo": algo}
    planned = _planned_without_autograd(x, w, padding, settings)
    if planned is None:
        return None
    algorithm, problem = planned
    zeros = not any(padding) or (boundary == "constant" and cval == 0)
    if zeros and x.is_floating_point():
        product = product_runner(algorithm.name, problem)
        return lambda x, w, bias, _: _biased(product(x, w), bias)
    run_extended = algorithm.run_extended
    if run_extended is None or not (zeros or boundary != "constant"):
        return None
    return lambda x, w, bias, result_dtype: _biased(
        run_extended(x, w, problem, boundary, samples, result_dtype if bias is None else None), bias
    )


def _biased(y: Tensor, bias: Tensor | None) -> Tensor:
    return y if bias is None else y.add_(bias.to(y.dtype).view(1, -1, 1, 1))


def _planned_without_autograd(
    x: Tensor, w: Tensor, padding: Quad, settings: dict[str, Any]
) -> tuple[Algorithm, Problem] | None:
    """The planner's algorithm for the zero-padded problem, and the problem, where nothing records the call (no
    gradient, tracing or autocast; CPU): the direct algorithm then reads the boundary inside its kernels, at no
    extra cost, and a transform takes a padded copy rather than bands of direct sums."""
    bias = settings["bias"]
    tensors = (x, w) if bias is None else (x, w, bias)
    if traced(x, w) or torch.is_autocast_enabled(x.device.type) or x.device.type != "cpu":
        return None
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return None
    geometry = {"stride": settings["stride"], "dilation": settings["dilation"], "groups": settings["groups"]}
    samples = None if x.is_floating_point() else x.dtype  # 8/16-bit: read as they are where a kernel can
    problem = dataclasses.replace(problem_for(x, w, padding=padding, **geometry), dtype=w.dtype, input_dtype=samples)
    return get_algorithm(plan_problem(problem, algo=settings["algo"]).forward.algorithm), problem


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


def _extended_window(x: Tensor, padding: Quad, extension: tuple[str, float, int], rows: Pair, cols: Pair) -> Tensor:
    """Rows ``rows[0]:rows[1]`` and columns ``cols[0]:cols[1]`` of ``x`` extended by ``padding`` (padded
    coordinates): a slice along an axis where the span lies inside the image, else an index selection, rows
    first for the top and bottom bands (a few full-width rows), columns first for the side bands. ``extension``:
    the boundary, ``cval`` and the samples per pixel of a row."""
    (height, width), (top, bottom, left, right) = _sizes(x), padding
    boundary, cval, samples = extension
    if rows[1] - rows[0] < height:
        window = _select(x, -2, (height, top, bottom, 1), rows, boundary, cval)
        return _select(window, -1, (width, left, right, samples), cols, boundary, cval)
    window = _select(x, -1, (width, left, right, samples), cols, boundary, cval)
    return _select(window, -2, (height, top, bottom, 1), rows, boundary, cval)


def _select(x: Tensor, dim: int, axis: tuple[int, int, int, int], span: Pair, boundary: str, cval: float) -> Tensor:
    """Positions ``span`` (padded coordinates) of axis ``dim``: ``axis`` is its size, the padding before and
    after, and the samples per pixel along it (see :func:`xcorr.padding.source_indices`)."""
    size, before, after, samples = axis
    start, stop = span[0] - before, span[1] - before  # image coordinates
    if start >= 0 and stop <= size:
        return x.narrow(dim, start, stop - start)
    if boundary != "constant":
        return take(x, dim, source_indices(size, before, after, boundary, samples)[span[0] : span[1]])
    position = np.arange(start, stop)
    window = take(x, dim, position.clip(0, size - 1))
    outside = index_tensor(np.flatnonzero((position < 0) | (position >= size)), x.device)
    return window.index_fill(dim, outside, cval)
