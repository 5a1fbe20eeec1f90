"""Low-rank kernels as pairs of 1-D passes: ``r * (kh + kw)`` multiply-adds per pixel instead of ``kh * kw``.

Every (o, c) slice of the weight is ``sum_k col_k x row_k`` (:func:`xcorr.lowrank.factors`, a cross
decomposition that reproduces each kernel entry to a few ulps). For each output row the vertical pass combines the
``kh`` input rows it reads into one row buffer, ``t = sum_i col_k[i] * x[row_i, :]``, and the horizontal pass
correlates that buffer with ``row_k`` into the output row, both with the numba row kernels of
:mod:`~xcorr.algo.rowpass` (SIMD over columns, eight taps per sweep). Stride, dilation and zero padding
are handled without a padded image: rows in the padding are left out of the vertical pass, and the row buffer
has zero margins as wide as the column padding. Extra memory: one padded row and one output row per thread.
Columns of 5 or 7 taps over stride-1, undilated rows (Gaussians of those sizes) run in blocks of four output rows
instead: the four vertical passes are one register-blocked sweep of :mod:`~xcorr.algo.rowpass`, and each
horizontal pass one eight-tap sweep (its taps padded with zero weights on a row of zeros).

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
from xcorr.algo.fourrows import block_of, row_groups, row_sources, rows_read
from xcorr.algo.registry import Algorithm, register
from xcorr.algo.rowpass import add_column_four_rows, correlate_taps
from xcorr.algo.threads import claim, run_tasks
from xcorr.lowrank import factors
from xcorr.problem import Problem


@numba.njit(cache=True, nogil=True)
def _separable_rows(x2, cols, rows, y2, schedule, channels, height, groups, out_height, stride, dilation, top, left):  # type: ignore[no-untyped-def]
    """The rows of ``y2`` (N*O*Ho, Wo) claimed from ``schedule`` (:func:`~xcorr.algo.threads.claim`), from ``x2``
    (N*C*H, W) and the factors ``cols`` (O, Cg, r, kh), ``rows`` (O, Cg, r, kw)."""
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
    while True:
        first, stop = claim(schedule)
        if first == stop:
            return
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


@numba.njit(cache=True, nogil=True)
def _separable_blocks(x2, cols, rows, y2, schedule, channels, height, groups, out_height, geometry):  # type: ignore[no-untyped-def]
    """The tasks claimed from ``schedule`` (blocks of four output rows) of ``y2``, as :func:`_separable_rows`
    computes them, for stride-1 rows, undilated, and columns ``cols`` whose taps make one group of
    :func:`~xcorr.algo.fourrows.row_groups` (5 or 7): the four rows' vertical passes run as one register-blocked
    sweep (:func:`~xcorr.algo.rowpass.add_column_four_rows`), each input row loaded once."""
    out_channels, channels_per_group, rank, kh = cols.shape
    kw = rows.shape[3]
    stride_x, dilation_x, top, left, row_source = geometry  # row_source: -1 for the zero rows
    width, out_width = x2.shape[1], y2.shape[1]
    margin = max(0, left)
    last_read = (out_width - 1) * stride_x + (kw - 1) * dilation_x - left
    # Four lines with zero margins, and a fifth of zeros: the horizontal taps are padded to a multiple of eight
    # with zero weights on that row, so that each line takes whole eight-tap sweeps (one pass for 7 taps, not 3).
    lines = np.zeros((5, margin + width + max(0, last_read - (width - 1))), x2.dtype)
    window = np.zeros((kh + 3, width), x2.dtype)
    scratch = np.empty((4, out_width), y2.dtype)
    term = np.empty(out_width, y2.dtype)
    taps = -(-kw // 8) * 8
    line_rows = np.full(taps, 4, np.int64)
    horizontal_offsets = np.zeros(taps, np.int64)
    horizontal_offsets[:kw] = np.arange(kw) * dilation_x - left + margin
    horizontal_weights = np.zeros(taps, y2.dtype)
    while True:
        first, stop = claim(schedule)
        if first == stop:
            return
        for task in range(first, stop):
            block = block_of(task, y2, scratch, out_height, out_channels, groups, channels, channels_per_group)
            r, o, first_channel, out_row, out = block
            for ci in range(channels_per_group):
                src = rows_read(x2, (first_channel + ci) * height, r - top, height, window, row_source[r : r + kh + 3])
                for k in range(rank):
                    lines[:4, margin : margin + width] = 0
                    add_column_four_rows(lines, margin, width, src, 0, cols[o, ci, k])
                    horizontal_weights[:kw] = rows[o, ci, k]
                    first_term = ci == 0 and k == 0
                    for u in range(4):
                        line_rows[:kw] = u
                        target = out[u] if first_term else term
                        correlate_taps(target, lines, line_rows, horizontal_offsets, horizontal_weights, taps, stride_x)
                        if not first_term:
                            out[u] += term
            if r + 4 > out_height:
                y2[out_row : out_row + out_height - r] = scratch[: out_height - r]


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
    top, bottom, left, _ = problem.padding
    if _four_rows(problem):
        zero_rows = row_sources(h, top, bottom, "constant")
        blocks = (c, h, problem.groups, ho, (problem.stride[1], problem.dilation[1], top, left, zero_rows))
        run_tasks(_separable_blocks, (x2, cols, rows, y2), blocks, n * o * -(-ho // 4), cost(problem))
    else:
        geometry = (c, h, problem.groups, ho, problem.stride, problem.dilation, top, left)
        run_tasks(_separable_rows, (x2, cols, rows, y2), geometry, n * o * ho, cost(problem))
    return y


def _four_rows(problem: Problem) -> bool:
    """Whether the vertical passes run four rows at a time (:func:`_separable_blocks`)."""
    kh = problem.weight_shape[2]
    return problem.stride[0] == 1 and problem.dilation[0] == 1 and row_groups(kh) == (kh,)


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
