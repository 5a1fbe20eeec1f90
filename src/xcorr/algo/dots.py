"""The direct algorithm for wide kernels and narrow outputs: one dot product per output pixel and kernel row.

Weight gradients and the normal equations of a kernel fit are correlations whose "kernel" is nearly as large as
the image and whose output is tiny (a 7x7 weight gradient of a 1024x1024 image correlates the image with a
1018x1018 kernel). Sweeping along such an output's few columns, as the row kernels do, spends the time in loop
overhead. Here each output pixel is a sum over the kernel rows of dot products taken along the kernel's long
rows: SIMD over the image's columns, the image row reused from cache by every output column, never a sweep along
the tiny output.

A task is one output row of one (image, output channel) plane. Kernel rows whose input row lies in the padding
read the boundary's row (or are left out, for zeros); the few kernel columns that reach past the image's edge
are read through the boundary's column map one by one, the rest in place. Each row's dot product is reassociated
(``fastmath={"reassoc", "contract"}``: several SIMD partial sums) and the rows are summed in float64, so the
error stays relative to ``sum |w| |x|`` (the bound of any summation order), smaller than a sequential sum's.
"""

from __future__ import annotations

import numba
import numpy as np

from xcorr.algo.saturation import store_row
from xcorr.algo.threads import claim
from xcorr.problem import Problem

DOT_FASTMATH = {"reassoc", "contract"}


def suits(problem: Problem) -> bool:
    """Whether the kernel rows are long next to the output rows, where dot products beat row sweeps.

    Example:
        >>> suits(Problem((8, 1, 1024, 1024), (1, 1, 1018, 1018)))  # a 7x7 weight gradient
        True
        >>> suits(Problem((1, 1, 1024, 1024), (1, 1, 7, 7)))
        False
    """
    kw, wo = problem.weight_shape[3], problem.output_shape[3]
    return kw >= 32 and kw >= 4 * wo


@numba.njit(cache=True, fastmath=DOT_FASTMATH, boundscheck=False)
def _dot(w_row, x_row, first, stop, start):  # type: ignore[no-untyped-def]
    """``sum(w_row[j] * x_row[start + j] for first <= j < stop)``."""
    total = w_row.dtype.type(0)  # the kernel's float dtype (the image may hold 8- or 16-bit samples)
    # Unsigned indices: numba then skips its negative-index wraparound, which would block SIMD.
    w_part, x_part = w_row[first:stop], x_row[start + first : start + stop]
    for j in range(np.uint64(stop - first)):
        total += w_part[j] * x_part[j]
    return total


@numba.njit(inline="always")
def _padded(weight, x_row, source):  # type: ignore[no-untyped-def]
    """``weight`` times the padding column that reads input column ``source`` (-1: a zero)."""
    return np.float64(weight * x_row[source]) if source >= 0 else 0.0


@numba.njit(cache=True, nogil=True, boundscheck=False)
def correlate_rows(  # type: ignore[no-untyped-def]
    x2, w4, y2, schedule, channels, height, groups, out_height, stride, dilation, extension, limits
):
    """The rows of ``y2`` (N*O*Ho, Wo) claimed from ``schedule`` (:func:`~xcorr.algo.threads.claim`), from ``x2``
    (N*C*H, W) and ``w4`` (O, C // groups, kh, kw).

    ``extension`` and ``limits`` as :func:`xcorr.algo.direct._correlate_rows`'s: the top and left padding, the
    input row and column each padded row and column reads (-1: zero), and ``None`` or an integer ``y2``'s range.
    With column dilation ``d`` each input row is first split into its ``d`` phases (columns ``p, p + d, ...``),
    so every dot product still reads contiguous columns.
    """
    _, left, row_source, col_source = extension
    out_channels, channels_per_group, kh, kw = w4.shape
    outs_per_group = out_channels // groups
    width, out_width = x2.shape[1], y2.shape[1]
    d = dilation[1]
    phase_width = -(-width // d)
    phases = np.zeros((d, phase_width), x2.dtype)
    sums = np.empty(out_width, np.float64)
    while True:
        first, stop = claim(schedule)
        if first == stop:
            return
        for flat in range(first, stop):
            plane, r = flat // out_height, flat % out_height
            n, o = plane // out_channels, plane % out_channels
            first_channel = n * channels + (o // outs_per_group) * channels_per_group
            sums[:] = 0.0
            for ci in range(channels_per_group):
                for i in range(kh):
                    q = row_source[r * stride[0] + i * dilation[0]]
                    if q < 0:
                        continue
                    w_row = w4[o, ci, i]
                    x_row = x2[(first_channel + ci) * height + q]
                    if d > 1:
                        for p in range(d):
                            phases[p, : (width - p + d - 1) // d] = x_row[p::d]
                    for c in range(out_width):
                        start = c * stride[1] - left  # input column of kernel column 0
                        p = start % d  # the phase kernel column 0 reads (Python's modulo: 0 <= p < d)
                        inside_first = min(kw, max(0, -(start // d)))  # ceil(-start / d)
                        inside_stop = max(inside_first, min(kw, (width - 1 - start) // d + 1))
                        row = phases[p] if d > 1 else x_row
                        total = np.float64(_dot(w_row, row, inside_first, inside_stop, (start - p) // d))
                        for j in range(inside_first):
                            total += _padded(w_row[j], x_row, col_source[start + left + j * d])
                        for j in range(inside_stop, kw):
                            total += _padded(w_row[j], x_row, col_source[start + left + j * d])
                        sums[c] += total
            store_row(y2[flat], sums, limits)
