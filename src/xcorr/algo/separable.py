"""Low-rank kernels as pairs of 1-D passes: ``r * (kh + kw)`` multiply-adds per pixel instead of ``kh * kw``.

Every (o, c) slice of the weight is ``sum_k col_k x row_k`` (:func:`xcorr.lowrank.factors`, a cross
decomposition that reproduces each kernel entry to a few ulps). For each output row the vertical pass combines the
``kh`` input rows it reads into one row buffer, ``t = sum_i col_k[i] * x[row_i, :]``, and the horizontal pass
correlates that buffer with ``row_k`` into the output row, both with the numba row kernels of
:mod:`~xcorr.algo.rowpass` (SIMD over columns, eight taps per sweep). Stride, dilation and zero padding
are handled without a padded image: rows in the padding are left out of the vertical pass, and the row buffer
has zero margins as wide as the column padding. Extra memory: one padded row and one output row per thread.

Exactness: the planner only offers this algorithm when :attr:`Problem.weight_rank` (from
:func:`xcorr.lowrank.weight_rank`) says the factors reproduce the kernel entry by entry without cancellation, so
the error stays relative to ``sum |w| |x|`` like a direct sum (``exact=True``); Gaussian, box, Sobel and Scharr
kernels qualify at rank 1.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

from xcorr import costs
from xcorr.algo.direct import compiled_kernel_refusal, row_arrays
from xcorr.algo.registry import Algorithm, register
from xcorr.algo.rowpass import correlate_taps
from xcorr.algo.threads import run_tasks
from xcorr.lowrank import factors
from xcorr.problem import Problem


@numba.njit(cache=True, nogil=True)
def _separable_rows(x2, cols, rows, y2, first, stop, channels, height, groups, out_height, stride, dilation, top, left):  # type: ignore[no-untyped-def]
    """Rows ``first:stop`` of ``y2`` (N*O*Ho, Wo) from ``x2`` (N*C*H, W) and the factors ``cols`` (O, Cg, r, kh),
    ``rows`` (O, Cg, r, kw)."""
    out_channels, channels_per_group, rank, kh = cols.shape
    kw = rows.shape[3]
    width = x2.shape[1]
    outs_per_group = out_channels // groups
    # The row buffer carries the zero padding as margins, so the horizontal pass has no border columns.
    margin = max(0, left)
    last_read = (y2.shape[1] - 1) * stride[1] + (kw - 1) * dilation[1] - left
    buffer = np.zeros(margin + width + max(0, last_read - (width - 1)), x2.dtype)
    line = buffer[margin : margin + width]
    source = buffer.reshape((1, buffer.shape[0]))
    source_rows = np.empty(kh, np.int64)
    vertical_offsets = np.zeros(kh, np.int64)
    vertical_weights = np.empty(kh, x2.dtype)
    buffer_rows = np.zeros(kw, np.int64)
    horizontal_offsets = np.arange(kw) * dilation[1] - left + margin
    unit_stride = stride[0] // stride[0]  # 1, typed like the strides (a literal 1 would compile another copy)
    term = np.empty(y2.shape[1], y2.dtype)
    for flat in range(first, stop):
        plane, r = flat // out_height, flat % out_height
        n, o = plane // out_channels, plane % out_channels
        first_channel = n * channels + (o // outs_per_group) * channels_per_group
        out = y2[flat]
        for ci in range(channels_per_group):
            for k in range(rank):
                count = 0
                for i in range(kh):
                    q = r * stride[0] + i * dilation[0] - top
                    if 0 <= q < height:
                        source_rows[count] = (first_channel + ci) * height + q
                        vertical_weights[count] = cols[o, ci, k, i]
                        count += 1
                correlate_taps(line, x2, source_rows, vertical_offsets, vertical_weights, count, unit_stride)
                if ci == 0 and k == 0:
                    correlate_taps(out, source, buffer_rows, horizontal_offsets, rows[o, ci, k], kw, stride[1])
                else:
                    correlate_taps(term, source, buffer_rows, horizontal_offsets, rows[o, ci, k], kw, stride[1])
                    out += term


def run(x: Tensor, w: Tensor, problem: Problem) -> Tensor:
    """``problem.weight_rank`` pairs of 1-D passes per (o, c) slice; zero padding handled in the kernels."""
    y, x2, y2 = row_arrays(x, problem)
    if y.numel() == 0:
        return y
    if problem.weight_rank is None:
        raise ValueError("separable needs problem.weight_rank (xcorr.lowrank.weight_rank of the weight)")
    n, c, h, _ = problem.input_shape
    _, o, ho, _ = problem.output_shape
    cols, rows = (f.to(x.dtype).numpy() for f in factors(w, problem.weight_rank))
    top, _, left, _ = problem.padding
    geometry = (c, h, problem.groups, ho, problem.stride, problem.dilation, top, left)
    run_tasks(
        lambda first, stop: _separable_rows(x2, cols, rows, y2, first, stop, *geometry), n * o * ho, cost(problem)
    )
    return y


def unsupported(problem: Problem) -> str | None:
    """CPU float32/float64, a known rank > 0 and fewer 1-D taps than 2-D ones."""
    refusal = compiled_kernel_refusal(problem, "separable")
    if refusal is not None:
        return refusal
    rank = problem.weight_rank
    if rank is None:
        return "the weight's rank is unknown (Problem.weight_rank is None)"
    kh, kw = problem.weight_shape[2:]
    if rank == 0:
        return "the kernel is all zeros; direct computes it (and propagates inf/nan like the reference)"
    if rank * (kh + kw) >= kh * kw:
        return f"a rank-{rank} {kh}x{kw} kernel needs {rank * (kh + kw)} 1-D taps, no fewer than its {kh * kw} 2-D taps"
    return None


def cost(problem: Problem) -> float:
    """Per row and per multiply-add of ``rank`` pairs of passes per input channel (:mod:`xcorr.costs`)."""
    n, o, ho, wo = problem.output_shape
    if ho <= 0 or wo <= 0:
        return costs.CALL_OVERHEAD
    _, cg, kh, kw = problem.weight_shape
    terms = n * o * ho * cg * (problem.weight_rank or min(kh, kw))
    per_mac = costs.SEPARABLE_PER_MAC
    if problem.dtype == torch.float64:
        per_mac *= costs.DIRECT_PER_MAC_F64 / costs.DIRECT_PER_MAC_F32
    macs = terms * (kh * problem.input_shape[3] + kw * wo)
    return (
        costs.CALL_OVERHEAD + costs.DIRECT_PER_ROW * n * o * ho + costs.SEPARABLE_PER_TERM_ROW * terms + per_mac * macs
    )


ALGORITHM = register(
    Algorithm(
        name="separable",
        run=run,
        unsupported=unsupported,
        cost=cost,
        exact=True,
        summary="r pairs of numba 1-D passes for rank-r kernels (Gaussian, box, Sobel): large separable filters",
    )
)
