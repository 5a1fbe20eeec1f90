"""The direct sliding-window sum, compiled with numba: SIMD over columns, threads over rows and channels.

An output row is one call of :func:`~xcorr.algo.rowpass.correlate_taps` with the kernel taps whose input rows
lie inside the image (rows in the zero padding are simply left out), summed eight taps per sweep in one SIMD
loop over contiguous columns. No padded copy of the image is ever made:

- wide rows read the input in place for the interior columns; the few border columns whose taps reach into the
  padding read two small strips, copies of just the input columns they need between zeros;
- wide stride-1 rows with a one-channel 3x3 kernel, or kernel rows in sevens, fives and fours, run four output rows
  per sweep instead (:mod:`~xcorr.algo.fourrows`: each input row loaded once serves up to four outputs);
- narrow stride-1 rows (depthwise layers, small images) run in blocks: the block's input rows are copied with
  their padding into one buffer of padded-width rows, so a whole block is one long sweep instead of many short
  ones (the per-sweep overhead is what makes short rows slow).

The ``(batch, output channel, row)`` tasks are spread over torch's thread count by
:func:`~xcorr.algo.threads.run_tasks`. Covers any stride, dilation, padding and grouping, float32 and
float64 on CPU; the work is ``output pixels * taps``, so the cost model leaves large kernels and dense
many-channel layers to the FFT and the vendor kernel. The sum is a direct one (fused multiply-adds, nothing
reassociated), so the error is relative to ``sum |w| |x|``: ``exact``. Compiled on first use per dtype (about
5-10 s) and cached on disk by numba (``cache=True``): later processes load it in well under a second.
"""

from __future__ import annotations

import functools
from typing import Any

import numba
import numpy as np
import torch
from torch import Tensor

from xcorr import costs
from xcorr.algo import dots, fourrows, saturation
from xcorr.algo.registry import Algorithm, register
from xcorr.algo.rowpass import correlate_taps
from xcorr.algo.saturation import store_row, summed_in
from xcorr.algo.strips import extend_line
from xcorr.algo.threads import claim, run_tasks
from xcorr.padding import source_indices
from xcorr.problem import Problem

SUPPORTED_DTYPES = (torch.float32, torch.float64)

# Stride-1 outputs narrower than this run in blocks of rows (one long sweep per block, not one per short row),
# each block's input at most about BLOCK_ELEMENTS values per input channel (L2-sized).
BLOCK_MODE_MAX_WIDTH = 256
BLOCK_ELEMENTS = 16384
# See _empty_apart_from.
PAGE_BYTES = 4096


@numba.njit(cache=True, nogil=True)
def _correlate_rows(  # type: ignore[no-untyped-def]
    x2, w4, y2, schedule, channels, height, groups, out_height, stride, dilation, extension, limits
):
    """The rows of ``y2`` (N*O*Ho, Wo) claimed from ``schedule`` (:func:`~xcorr.algo.threads.claim`), from ``x2``
    (N*C*H, W) and ``w4`` (O, C // groups, kh, kw); ``limits``: ``None``, or an integer ``y2``'s range, each row
    then summed in ``w4``'s dtype and rounded into it (:func:`~xcorr.algo.saturation.store_row`).

    ``extension`` is ``(top, left, row_source, col_source)``: the padding before the first row and column, and
    for each padded row and column the input one it reads (:func:`xcorr.padding.source_indices`; -1: zero). The
    interior columns read ``x2`` in place. The border columns, whose taps reach past the edge, read two small
    strips: copies of the few (extended) input columns they need, so no sweep tests a column.
    """
    _, left, row_source, col_source = extension  # the top padding is in row_source
    out_channels, channels_per_group, kh, kw = w4.shape
    outs_per_group = out_channels // groups
    width, out_width = x2.shape[1], y2.shape[1]
    # Interior: output columns whose every tap reads inside [0, width).
    lo = min(out_width, max(0, (left + stride[1] - 1) // stride[1]))
    hi = max(lo, min(out_width, (width - 1 + left - (kw - 1) * dilation[1]) // stride[1] + 1))
    strip_width = (max(lo, out_width - hi) - 1) * stride[1] + (kw - 1) * dilation[1] + 1
    strip = np.zeros((channels_per_group * kh, max(strip_width, 1)), x2.dtype)
    taps = channels_per_group * kh * kw
    rows, strip_rows = np.empty(taps, np.int64), np.empty(taps, np.int64)
    offsets, strip_offsets = np.empty(taps, np.int64), np.empty(taps, np.int64)
    weights = np.empty(taps, w4.dtype)
    sums = np.empty(out_width, w4.dtype)
    while True:
        first, stop = claim(schedule)
        if first == stop:
            return
        for flat in range(first, stop):
            plane, r = flat // out_height, flat % out_height
            n, o = plane // out_channels, plane % out_channels
            first_channel = n * channels + (o // outs_per_group) * channels_per_group
            count = 0
            for ci in range(channels_per_group):
                for i in range(kh):
                    q = row_source[r * stride[0] + i * dilation[0]]
                    if q >= 0:
                        for j in range(kw):
                            rows[count] = (first_channel + ci) * height + q
                            strip_rows[count] = ci * kh + i
                            offsets[count] = lo * stride[1] + j * dilation[1] - left
                            strip_offsets[count] = j * dilation[1]
                            weights[count] = w4[o, ci, i, j]
                            count += 1
            out = summed_in(y2[flat], sums)
            correlate_taps(out[lo:hi], x2, rows, offsets, weights, count, stride[1])
            for a, b in ((0, lo), (hi, out_width)):
                if a < b:
                    start = a * stride[1]  # padded column of strip column 0
                    length = (b - 1 - a) * stride[1] + (kw - 1) * dilation[1] + 1
                    for t in range(0, count, kw):
                        extend_line(strip[strip_rows[t]], x2[rows[t]], col_source, 0, length, start)
                    correlate_taps(out[a:b], strip, strip_rows, strip_offsets, weights, count, stride[1])
            if limits is not None:
                store_row(y2[flat], sums, limits)


@numba.njit(cache=True, nogil=True)
def _correlate_blocks(  # type: ignore[no-untyped-def]
    x2, w4, y2, schedule, channels, height, groups, out_height, dilation, extension, block_rows, limits
):
    """Stride-1 problems with narrow rows: the tasks claimed from ``schedule``, each ``block_rows`` output rows of
    one (n, o) plane.

    ``extension`` and ``limits`` as :func:`_correlate_rows`'s. The input rows a block reads are copied, extended
    (or with their zero padding), into one buffer of padded-width rows; output row ``u`` column ``c`` then reads
    buffer element ``u * pitch + c + offset(tap)``, so the whole block is one long row for :func:`correlate_taps`
    (its few sweeps amortised over the block, not paid per short row), the ``pitch - Wo`` values between output
    rows computed and dropped.
    """
    _, left, row_source, col_source = extension  # the top padding is in row_source
    out_channels, channels_per_group, kh, kw = w4.shape
    outs_per_group = out_channels // groups
    width, out_width = x2.shape[1], y2.shape[1]
    pitch = out_width + (kw - 1) * dilation[1]  # = left + width + right
    in_rows = block_rows + (kh - 1) * dilation[0]
    block = np.zeros((1, channels_per_group * in_rows * pitch), x2.dtype)
    flat_out = np.empty(block_rows * pitch, w4.dtype)
    taps = channels_per_group * kh * kw
    rows = np.zeros(taps, np.int64)
    offsets = np.empty(taps, np.int64)
    weights = np.empty(taps, w4.dtype)
    blocks_per_plane = (out_height + block_rows - 1) // block_rows
    begin, end = max(0, left), min(pitch, left + width)  # buffer columns that hold input columns
    while True:
        first, stop = claim(schedule)
        if first == stop:
            return
        for task in range(first, stop):
            plane, first_row = task // blocks_per_plane, (task % blocks_per_plane) * block_rows
            n, o = plane // out_channels, plane % out_channels
            first_channel = n * channels + (o // outs_per_group) * channels_per_group
            count_rows = min(block_rows, out_height - first_row)
            count = 0
            for ci in range(channels_per_group):
                for u in range(count_rows + (kh - 1) * dilation[0]):
                    line = block[0, (ci * in_rows + u) * pitch : (ci * in_rows + u + 1) * pitch]
                    q = row_source[first_row + u]
                    if q < 0:
                        line[:] = 0
                        continue
                    source = x2[(first_channel + ci) * height + q]
                    _copy_columns(line, source, begin, end, left)
                    extend_line(line, source, col_source, 0, begin, 0)  # the padding columns
                    extend_line(line, source, col_source, end, pitch, 0)
                for i in range(kh):
                    for j in range(kw):
                        offsets[count] = (ci * in_rows + i * dilation[0]) * pitch + j * dilation[1]
                        weights[count] = w4[o, ci, i, j]
                        count += 1
            length = (count_rows - 1) * pitch + out_width
            correlate_taps(flat_out[:length], block, rows, offsets, weights, count, 1)
            for u in range(count_rows):
                store_row(y2[plane * out_height + first_row + u], flat_out[u * pitch : u * pitch + out_width], limits)


@numba.njit(inline="always")
def _copy_columns(line, source, begin, end, left):  # type: ignore[no-untyped-def]
    """``line[begin:end] = source[begin - left : end - left]`` as one vectorised loop (unsigned indices: no
    wraparound test; numba's slice assignment checks the two for overlap first, which cost 4x the copy of a
    64-value row)."""
    first, shift = np.uint64(max(begin, 0)), np.uint64(max(begin - left, 0))
    for c in range(np.uint64(max(end - begin, 0))):
        line[first + c] = source[shift + c]


def row_arrays(x: Tensor, problem: Problem, dtype: torch.dtype | None = None) -> tuple[Tensor, np.ndarray, np.ndarray]:
    """The output ``y`` (N, O, Ho, Wo) of ``dtype`` (``None``: ``problem.dtype``), and the input and output as 2-D
    NumPy views of their rows: ``x2`` (N*C*H, W) and ``y2`` (N*O*Ho, Wo), the layout the numba kernels walk."""
    n, c, h, width = problem.input_shape
    _, o, ho, wo = problem.output_shape
    ho, wo = max(ho, 0), max(wo, 0)
    x = x.contiguous()
    values = _empty_apart_from(x, n * o * ho * wo, dtype or problem.dtype)
    return torch.from_numpy(values).view(n, o, ho, wo), x.view(n * c * h, width).numpy(), values.reshape(n * o * ho, wo)


def _empty_apart_from(x: Tensor, size: int, dtype: torch.dtype) -> np.ndarray:
    """``size`` uninitialised values of ``dtype`` (a 1-D NumPy array) that lie half a page from ``x``'s data, modulo
    the page size.

    Large allocations start at the same offset in their first page, and image rows are often a power of two
    bytes long; then every output row sits at the same address as an input row modulo 4096, and each store
    makes the next loads of the input wait for it (4K aliasing: the CPU matches loads against pending stores
    on the low 12 address bits). Seven-row kernels ran 1.6x slower so. The values lie inside a NumPy buffer one
    page longer, handed to torch from their first element on, so the tensor made of them starts at offset 0 (as a
    freshly allocated torch tensor, and as the operator's fake implementation promises).
    """
    numpy_dtype = _numpy_dtype(dtype)
    item = numpy_dtype.itemsize
    buffer = np.empty(size + PAGE_BYTES // item, dtype=numpy_dtype)
    shift = (x.data_ptr() + PAGE_BYTES // 2 - buffer.__array_interface__["data"][0]) % PAGE_BYTES // item
    return buffer[shift : shift + size]


@functools.cache
def _numpy_dtype(dtype: torch.dtype) -> np.dtype:
    return torch.empty(0, dtype=dtype).numpy().dtype


def run(x: Tensor, w: Tensor, problem: Problem) -> Tensor:
    """Direct sum over the taps; zero padding handled in the kernel, never materialised as a padded image."""
    return run_extended(x, w, problem, "constant")


def run_extended(
    x: Tensor, w: Tensor, problem: Problem, boundary: str, samples: int = 1, result_dtype: torch.dtype | None = None
) -> Tensor:
    """:func:`run` with ``problem.padding`` extending ``x`` by ``boundary`` (a ``numpy.pad`` mode; ``"constant"``
    is zeros) inside the kernels: the rows and border strips read reflected, wrapped or repeated rows and
    columns, as they read zeros for zero padding. No padded copy, the cost of zero padding. ``samples``: the
    rows hold pixels of that many interleaved values (channels last), as :func:`xcorr.padding.source_indices`.

    ``x`` may also hold 8- or 16-bit samples (:data:`xcorr.arguments.SAMPLE_DTYPES`): the kernels read them as
    they are and accumulate in ``problem.dtype`` (float32 or float64), so no float copy of the image is made.
    ``result_dtype``: an integer dtype to return instead (:func:`~xcorr.algo.saturation.rounds_in_kernels`), each
    output row rounded half to even and saturated as it is finished, so no float result is written and read back.

    Example:
        >>> x = torch.tensor([[[[10, 200, 30]]]], dtype=torch.uint8)
        >>> w = torch.tensor([[[[0.5, 0.5]]]])
        >>> run_extended(x, w, Problem((1, 1, 1, 3), (1, 1, 1, 2), padding=(0, 0, 0, 1)), "edge", 1, torch.uint8)
        tensor([[[[105, 115,  30]]]], dtype=torch.uint8)
    """
    y, x2, y2 = row_arrays(x, problem, result_dtype)
    if y.numel() == 0:
        return y
    w4 = w.to(problem.dtype).contiguous().numpy()
    limits = None if result_dtype is None else saturation.limits(result_dtype, problem.dtype)
    kernel, geometry, tasks, seconds = _walk(problem, boundary, samples)
    run_tasks(kernel, (x2, w4, y2), (*geometry, limits), tasks, seconds)
    return y


@functools.lru_cache(maxsize=1024)
def _walk(problem: Problem, boundary: str, samples: int) -> tuple[Any, tuple[Any, ...], int, float]:
    """How :func:`run_extended` walks ``problem``'s output: the numba kernel for its mode (:func:`_mode`), the
    kernel's arguments after ``(x2, w4, y2, schedule)``, the task count and the estimated seconds. Depends
    on the problem alone, so a call in a loop only looks it up (the boundary's index maps are read-only)."""
    n, c, h, width = problem.input_shape
    _, o, ho, _ = problem.output_shape
    top, bottom, left, right = problem.padding
    extension = (
        top,
        left,
        fourrows.row_sources(h, top, bottom, boundary),
        source_indices(width, left, right, boundary, samples),
    )
    seconds = cost(problem)
    mode = _mode(problem)
    if mode == "dots":
        geometry = (c, h, problem.groups, ho, problem.stride, problem.dilation, extension)
        return dots.correlate_rows, geometry, n * o * ho, seconds
    if mode == "blocks":
        block_rows = max(1, min(ho, BLOCK_ELEMENTS // problem.padded_size[1]))
        blocks = (c, h, problem.groups, ho, problem.dilation, extension, block_rows)
        return _correlate_blocks, blocks, n * o * -(-ho // block_rows), seconds
    if mode == "four rows":
        splits = np.array(fourrows.row_groups(problem.weight_shape[2]) or (), np.int64)  # () for the 3x3 sweep
        geometry4 = (c, h, problem.groups, ho, problem.dilation[1], extension, splits)
        return fourrows.correlate_blocks, geometry4, n * o * -(-ho // 4), seconds
    geometry = (c, h, problem.groups, ho, problem.stride, problem.dilation, extension)
    return _correlate_rows, geometry, n * o * ho, seconds


def compiled_kernel_refusal(problem: Problem, name: str) -> str | None:
    """Why the numba algorithm ``name`` cannot run ``problem``: its kernels take CPU float32/float64 arrays only."""
    if problem.device != "cpu":
        return f"{name} runs on CPU tensors only, not {problem.device}"
    if problem.dtype not in SUPPORTED_DTYPES:
        return f"{name} computes in float32 or float64, not {str(problem.dtype).removeprefix('torch.')}"
    return None


def unsupported(problem: Problem) -> str | None:
    """CPU float32/float64; everything else geometric is supported (the cost model keeps it off dense layers)."""
    return compiled_kernel_refusal(problem, "direct")


def _mode(problem: Problem) -> str:
    """How :func:`run` walks the output: "dots" along long kernel rows for narrow outputs
    (:mod:`~xcorr.algo.dots`), "blocks" of narrow stride-1 rows, "four rows" at a time where
    :mod:`~xcorr.algo.fourrows` covers the kernel, else "rows" one by one."""
    if dots.suits(problem):
        return "dots"
    if problem.stride == (1, 1) and problem.output_shape[3] < BLOCK_MODE_MAX_WIDTH:
        return "blocks"
    return "four rows" if fourrows.covers(problem) else "rows"


def work(problem: Problem) -> tuple[str, int, int, int]:
    """What :func:`run` does for ``problem``: its mode, and the counts the cost model prices: sweep columns (each
    sweep of the inner loop adds up to eight taps into every column of an output row or block, which it loads and
    stores; in "dots" mode the count of dot products instead), output rows or blocks, and multiply-adds including
    those a block computes and drops between its rows."""
    n, o, ho, wo = problem.output_shape
    _, cg, kh, kw = problem.weight_shape
    mode = _mode(problem)
    if mode == "dots":
        return mode, n * o * ho * wo * cg * kh, n * o * ho, problem.macs
    taps = cg * kh * kw
    sweeps = taps // 8 + (taps % 8).bit_count()  # eight taps per sweep, then four, two, one
    if mode == "blocks":
        pitch = problem.padded_size[1]
        block_rows = max(1, min(ho, BLOCK_ELEMENTS // pitch))
        blocks, length = n * o * -(-ho // block_rows), (block_rows - 1) * pitch + wo
        return mode, blocks * sweeps * length, blocks, blocks * length * taps
    rows = n * o * ho
    return mode, rows * sweeps * wo, rows, problem.macs


def cost(problem: Problem) -> float:
    """Prices per sweep, per output row or block and per multiply-add, by mode (:mod:`xcorr.costs`, fitted by
    ``bench.calibrate``)."""
    _, _, ho, wo = problem.output_shape
    if ho <= 0 or wo <= 0:
        return costs.CALL_OVERHEAD
    mode, sweeps, rows, macs = work(problem)
    per_mac = costs.DIRECT_PER_MAC_F64 if problem.dtype == torch.float64 else costs.DIRECT_PER_MAC_F32
    per_sweep = costs.DIRECT_PER_SWEEP_COLUMN
    if mode == "four rows":
        per_mac *= costs.DIRECT_FOUR_ROW_MAC_FACTOR
        per_sweep = 0.0
    elif mode == "dots":
        per_mac *= costs.DIRECT_DOTS_MAC_FACTOR
        per_sweep = costs.DIRECT_PER_DOT
    return costs.CALL_OVERHEAD + costs.DIRECT_PER_ROW * rows + per_sweep * sweeps + per_mac * macs


ALGORITHM = register(
    Algorithm(
        name="direct",
        run=run,
        unsupported=unsupported,
        cost=cost,
        exact=True,
        summary="numba sliding-window sum, SIMD and multi-threaded: small kernels, images and depthwise layers",
        run_extended=run_extended,
    )
)
