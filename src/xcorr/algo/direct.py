"""The direct sliding-window sum, compiled with numba: SIMD over columns, threads over rows and channels.

An output row is one call of :func:`~xcorr.algo.rowpass.correlate_taps` with the kernel taps whose input rows
lie inside the image (rows in the zero padding are simply left out), summed eight taps per sweep in one SIMD
loop over contiguous columns. No padded copy of the image is ever made:

- wide rows read the input in place for the interior columns; the few border columns whose taps reach into the
  padding read two small strips, copies of just the input columns they need between zeros;
- wide stride-1 rows with a one-channel 3x3 kernel, or kernel rows in sevens and fives, run four output rows per sweep
  where all the rows they read lie inside the image (the register-blocked sweeps of :mod:`~xcorr.algo.rowpass`:
  each input row loaded once serves up to four outputs);
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

import math

import numba
import numpy as np
import torch
from torch import Tensor

from xcorr import costs
from xcorr.algo.registry import Algorithm, register
from xcorr.algo.rowpass import (
    add_column5_four_rows,
    add_column7_four_rows,
    add_columns5_four_rows,
    add_columns7_four_rows,
    correlate_3x3_four_rows,
    correlate_taps,
)
from xcorr.algo.threads import run_tasks
from xcorr.problem import Problem

SUPPORTED_DTYPES = (torch.float32, torch.float64)

# Stride-1 outputs narrower than this run in blocks of rows (one long sweep per block, not one per short row),
# each block's input at most about BLOCK_ELEMENTS values per input channel (L2-sized).
BLOCK_MODE_MAX_WIDTH = 256
BLOCK_ELEMENTS = 16384
# See _empty_apart_from.
PAGE_BYTES = 4096


@numba.njit(cache=True, nogil=True)
def _correlate_rows(x2, w4, y2, first, stop, channels, height, groups, out_height, stride, dilation, top, left):  # type: ignore[no-untyped-def]
    """Rows ``first:stop`` of ``y2`` (N*O*Ho, Wo) from ``x2`` (N*C*H, W) and ``w4`` (O, C // groups, kh, kw).

    Four rows at a time where :func:`_four_rows_apply` allows and the rows they read lie inside the image
    (:func:`_correlate_four_rows`); the other rows one by one: the interior columns read ``x2`` in place; the
    border columns, whose taps reach into the zero padding, read two small strips: copies of the few input
    columns they need between zeros, so no sweep tests a column.
    """
    out_channels, channels_per_group, kh, kw = w4.shape
    outs_per_group = out_channels // groups
    width, out_width = x2.shape[1], y2.shape[1]
    # Interior: output columns whose every tap reads inside [0, width).
    lo = min(out_width, max(0, (left + stride[1] - 1) // stride[1]))
    hi = max(lo, min(out_width, (width - 1 + left - (kw - 1) * dilation[1]) // stride[1] + 1))
    strip_width = max(1, (max(lo, out_width - hi) - 1) * stride[1] + (kw - 1) * dilation[1] + 1)
    strip = np.zeros((channels_per_group * kh, strip_width), x2.dtype)
    four_rows = _four_rows_apply(kh, kw, channels_per_group, stride, dilation)
    edge = np.zeros((kh + 3 if four_rows else 0, strip_width), x2.dtype)
    taps = channels_per_group * kh * kw
    rows, strip_rows = np.empty(taps, np.int64), np.empty(taps, np.int64)
    offsets, strip_offsets = np.empty(taps, np.int64), np.empty(taps, np.int64)
    weights = np.empty(taps, y2.dtype)
    done = first  # rows before this one were computed four at a time
    for flat in range(first, stop):
        if flat < done:
            continue
        plane, r = flat // out_height, flat % out_height
        n, o = plane // out_channels, plane % out_channels
        first_channel = n * channels + (o // outs_per_group) * channels_per_group
        q = r - top  # input row of the first kernel row (when four_rows: stride 1)
        if four_rows and q >= 0 and q + kh + 3 <= height and r + 4 <= out_height and flat + 4 <= stop:
            first_row = first_channel * height + q
            _correlate_four_rows(x2, w4[o], y2[flat : flat + 4], first_row, height, left, dilation[1], edge)
            done = flat + 4
            continue
        count = 0
        for ci in range(channels_per_group):
            for i in range(kh):
                q = r * stride[0] + i * dilation[0] - top
                if 0 <= q < height:
                    for j in range(kw):
                        rows[count] = (first_channel + ci) * height + q
                        strip_rows[count] = ci * kh + i
                        offsets[count] = lo * stride[1] + j * dilation[1] - left
                        strip_offsets[count] = j * dilation[1]
                        weights[count] = w4[o, ci, i, j]
                        count += 1
        out = y2[flat]
        correlate_taps(out[lo:hi], x2, rows, offsets, weights, count, stride[1])
        for a, b in ((0, lo), (hi, out_width)):
            if a < b:
                start = a * stride[1] - left  # input column of strip column 0
                begin, end = max(0, start), min(width, (b - 1) * stride[1] + (kw - 1) * dilation[1] - left + 1)
                for t in range(0, count, kw):
                    strip[strip_rows[t], :] = 0
                    if begin < end:
                        strip[strip_rows[t], begin - start : end - start] = x2[rows[t], begin:end]
                correlate_taps(out[a:b], strip, strip_rows, strip_offsets, weights, count, stride[1])


@numba.njit(cache=True)
def _four_rows_apply(kh, kw, channels_per_group, stride, dilation):  # type: ignore[no-untyped-def]
    """Whether rows may run four at a time: stride 1, rows undilated, and a kernel that the register-blocked
    sweeps of :mod:`~xcorr.algo.rowpass` cover exactly (a one-channel undilated 3x3, or rows in sevens and fives)."""
    if stride[0] != 1 or stride[1] != 1 or dilation[0] != 1:
        return False
    return (kh == 3 and kw == 3 and channels_per_group == 1 and dilation[1] == 1) or _fives(kh) >= 0


@numba.njit(cache=True, nogil=True)
def _correlate_four_rows(x2, w3, out, first, height, left, dilation_x, edge):  # type: ignore[no-untyped-def]
    """The four output rows ``out`` (4, Wo) from the kernel ``w3`` (C // groups, kh, kw): stride 1, rows undilated,
    every row read inside the image. The first output row's first kernel row is row ``first`` of ``x2`` (the
    group's first channel; the next channel is ``height`` rows on); the input has ``left`` columns of zeros.

    The interior columns read ``x2`` in place; each border reads ``edge`` (at least kh + 3 rows), a copy of the
    input columns it needs between zeros.
    """
    channels_per_group, kh, _ = w3.shape
    width, out_width = x2.shape[1], out.shape[1]
    reach = (w3.shape[2] - 1) * dilation_x
    lo = min(out_width, left)
    hi = max(lo, min(out_width, width + left - reach))
    rows = kh + 3
    if lo < hi:
        for ci in range(channels_per_group):
            channel = first + ci * height
            _sweep_four_rows(out, lo, hi - lo, x2[channel : channel + rows], lo - left, w3[ci], dilation_x, ci == 0)
    for a, b in ((0, lo), (hi, out_width)):
        if a < b:
            start = a - left  # input column of edge column 0
            begin, end = max(0, start), min(width, b + reach - left)
            for ci in range(channels_per_group):
                channel = first + ci * height
                edge[:rows] = 0
                if begin < end:
                    edge[:rows, begin - start : end - start] = x2[channel : channel + rows, begin:end]
                _sweep_four_rows(out, a, b - a, edge[:rows], 0, w3[ci], dilation_x, ci == 0)


@numba.njit(cache=True, nogil=True)
def _sweep_four_rows(out, lo, n, src, start, w2, dilation_x, store):  # type: ignore[no-untyped-def]
    """``out[u, lo + c] (+)= sum_ij w2[i, j] * src[u + i, start + c + j * dilation_x]`` for ``u < 4``, ``c < n``:
    one input channel's kernel ``w2`` (kh, kw) over the rows ``src`` (kh + 3, W); ``store`` for the first channel."""
    kh, kw = w2.shape
    if kh == 3 and kw == 3:  # one channel, undilated (_four_rows_apply): store is True
        correlate_3x3_four_rows(out, lo, n, src, start, w2)
        return
    if store:
        out[:, lo : lo + n] = 0
    fives = _fives(kh)
    for g in range(0, kh - 5 * fives, 7):
        window = src[g : g + 10]
        for j in range(0, kw - 1, 2):
            v, w = w2[g : g + 7, j], w2[g : g + 7, j + 1]
            add_columns7_four_rows(out, lo, n, window, start + j * dilation_x, v, dilation_x, w)
        if kw % 2:
            add_column7_four_rows(out, lo, n, window, start + (kw - 1) * dilation_x, w2[g : g + 7, kw - 1])
    for g in range(kh - 5 * fives, kh, 5):
        window = src[g : g + 8]
        for j in range(0, kw - 1, 2):
            v, w = w2[g : g + 5, j], w2[g : g + 5, j + 1]
            add_columns5_four_rows(out, lo, n, window, start + j * dilation_x, v, dilation_x, w)
        if kw % 2:
            add_column5_four_rows(out, lo, n, window, start + (kw - 1) * dilation_x, w2[g : g + 5, kw - 1])


@numba.njit(cache=True)
def _fives(kh):  # type: ignore[no-untyped-def]
    """How many groups of five kernel rows, the rest in sevens, make up ``kh`` rows (fewest fives); -1 if none do."""
    for fives in range(7):
        if kh >= 5 * fives and (kh - 5 * fives) % 7 == 0:
            return fives
    return -1


@numba.njit(cache=True, nogil=True)
def _correlate_blocks(x2, w4, y2, first, stop, channels, height, groups, out_height, dilation, top, left, block_rows):  # type: ignore[no-untyped-def]
    """Stride-1 problems with narrow rows: tasks ``first:stop`` of ``block_rows`` output rows of one (n, o) plane.

    The input rows a block reads are copied, with their zero padding, into one buffer of padded-width rows;
    output row ``u`` column ``c`` then reads buffer element ``u * pitch + c + offset(tap)``, so the whole block is
    one long row for :func:`correlate_taps` (its few sweeps amortised over the block, not paid per short row),
    the ``pitch - Wo`` values between output rows computed and dropped.
    """
    out_channels, channels_per_group, kh, kw = w4.shape
    outs_per_group = out_channels // groups
    width, out_width = x2.shape[1], y2.shape[1]
    pitch = out_width + (kw - 1) * dilation[1]  # = left + width + right
    in_rows = block_rows + (kh - 1) * dilation[0]
    block = np.zeros((1, channels_per_group * in_rows * pitch), x2.dtype)
    flat_out = np.empty(block_rows * pitch, y2.dtype)
    taps = channels_per_group * kh * kw
    rows = np.zeros(taps, np.int64)
    offsets = np.empty(taps, np.int64)
    weights = np.empty(taps, y2.dtype)
    blocks_per_plane = (out_height + block_rows - 1) // block_rows
    begin, end = max(0, left), min(pitch, left + width)  # buffer columns that hold input columns
    for task in range(first, stop):
        plane, first_row = task // blocks_per_plane, (task % blocks_per_plane) * block_rows
        n, o = plane // out_channels, plane % out_channels
        first_channel = n * channels + (o // outs_per_group) * channels_per_group
        count_rows = min(block_rows, out_height - first_row)
        count = 0
        for ci in range(channels_per_group):
            for u in range(count_rows + (kh - 1) * dilation[0]):
                line = block[0, (ci * in_rows + u) * pitch : (ci * in_rows + u + 1) * pitch]
                q = first_row + u - top
                line[:] = 0
                if 0 <= q < height and begin < end:
                    line[begin:end] = x2[(first_channel + ci) * height + q, begin - left : end - left]
            for i in range(kh):
                for j in range(kw):
                    offsets[count] = (ci * in_rows + i * dilation[0]) * pitch + j * dilation[1]
                    weights[count] = w4[o, ci, i, j]
                    count += 1
        length = (count_rows - 1) * pitch + out_width
        correlate_taps(flat_out[:length], block, rows, offsets, weights, count, 1)
        for u in range(count_rows):
            y2[plane * out_height + first_row + u] = flat_out[u * pitch : u * pitch + out_width]


def row_arrays(x: Tensor, problem: Problem) -> tuple[Tensor, np.ndarray, np.ndarray]:
    """The output ``y`` (N, O, Ho, Wo), and the input and output as 2-D NumPy views of their rows:
    ``x2`` (N*C*H, W) and ``y2`` (N*O*Ho, Wo), the layout the numba kernels walk."""
    n, c, h, width = problem.input_shape
    _, o, ho, wo = problem.output_shape
    ho, wo = max(ho, 0), max(wo, 0)
    x = x.contiguous()
    y = _empty_apart_from(x, (n, o, ho, wo))
    x2 = x.view(n * c * h, width).numpy()
    return y, x2, y.view(n * o * ho, wo).numpy()


def _empty_apart_from(x: Tensor, shape: tuple[int, int, int, int]) -> Tensor:
    """An uninitialised tensor of ``x``'s dtype whose data lies half a page from ``x``'s, modulo the page size.

    Large allocations start at the same offset in their first page, and image rows are often a power of two
    bytes long; then every output row sits at the same address as an input row modulo 4096, and each store
    makes the next loads of the input wait for it (4K aliasing: the CPU matches loads against pending stores
    on the low 12 address bits). Seven-row kernels ran 1.6x slower so. The output is a view of a buffer one page longer.
    """
    item = x.element_size()
    buffer = torch.empty(math.prod(shape) + PAGE_BYTES // item, dtype=x.dtype)
    shift = (x.data_ptr() + PAGE_BYTES // 2 - buffer.data_ptr()) % PAGE_BYTES // item
    return buffer[shift : shift + math.prod(shape)].view(shape)


def run(x: Tensor, w: Tensor, problem: Problem) -> Tensor:
    """Direct sum over the taps; zero padding handled in the kernel, never materialised as a padded image."""
    y, x2, y2 = row_arrays(x, problem)
    if y.numel() == 0:
        return y
    n, c, h, _ = problem.input_shape
    _, o, ho, wo = problem.output_shape
    w4 = w.to(x.dtype).contiguous().numpy()
    top, _, left, _ = problem.padding
    seconds = cost(problem)
    if problem.stride == (1, 1) and wo < BLOCK_MODE_MAX_WIDTH:
        pitch = problem.padded_size[1]
        block_rows = max(1, min(ho, BLOCK_ELEMENTS // pitch))
        tasks = n * o * -(-ho // block_rows)
        blocks = (c, h, problem.groups, ho, problem.dilation, top, left, block_rows)
        run_tasks(lambda first, stop: _correlate_blocks(x2, w4, y2, first, stop, *blocks), tasks, seconds)
    else:
        geometry = (c, h, problem.groups, ho, problem.stride, problem.dilation, top, left)
        run_tasks(lambda first, stop: _correlate_rows(x2, w4, y2, first, stop, *geometry), n * o * ho, seconds)
    return y


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


def sweeps_four_rows(problem: Problem) -> bool:
    """Whether :func:`run` computes (nearly all) output rows four at a time: wide stride-1 rows and a kernel the
    register-blocked sweeps cover (see ``_four_rows_apply``)."""
    _, channels_per_group, kh, kw = problem.weight_shape
    wide = problem.output_shape[3] >= BLOCK_MODE_MAX_WIDTH
    return wide and bool(_four_rows_apply(kh, kw, channels_per_group, problem.stride, problem.dilation))


def cost(problem: Problem) -> float:
    """A price per output row and one per multiply-add, lower for the four-row sweeps (:mod:`xcorr.costs`,
    fitted by ``bench.calibrate``)."""
    n, o, ho, wo = problem.output_shape
    if ho <= 0 or wo <= 0:
        return costs.CALL_OVERHEAD
    per_mac = costs.DIRECT_PER_MAC_F64 if problem.dtype == torch.float64 else costs.DIRECT_PER_MAC_F32
    if sweeps_four_rows(problem):
        per_mac *= costs.DIRECT_FOUR_ROW_MAC_FACTOR
    return costs.CALL_OVERHEAD + costs.DIRECT_PER_ROW * n * o * ho + per_mac * problem.macs


ALGORITHM = register(
    Algorithm(
        name="direct",
        run=run,
        unsupported=unsupported,
        cost=cost,
        exact=True,
        summary="numba sliding-window sum, SIMD and multi-threaded: small kernels, images and depthwise layers",
    )
)
