"""The direct algorithm's fast path: four output rows per sweep.

Consecutive output rows read mostly the same input rows: the register-blocked sweeps of
:mod:`~xcorr.algo.rowpass` compute four of them at once, loading each input row once for all four. They cover
stride-1 problems with undilated rows and either a one-channel 3x3 kernel (one sweep) or kernel rows in
groups of seven, five and four (:func:`row_groups`: 5 rows, or 7 and more; any width, column dilation and
channels per group), each group swept one kernel column at a time: :func:`covers`.

A task is a block of four output rows of one (image, output channel) plane. Per input channel, the block reads
``kh + 3`` input rows: in place where they all lie inside the image, else from a window of copies between zero
rows (the top and bottom blocks). The interior columns read those rows in place; each border, whose taps reach
into the zero padding, reads a copy of the few columns it needs between zeros. A last, partial block is computed
into a scratch block and its rows copied out. Products with the padding are computed as zeros, as in the
reference. This is its own compiled entry point, not a branch of the row-by-row kernel: numba re-optimises every
kernel a compiled function calls, so keeping the two apart keeps each first-use compile short.
"""

from __future__ import annotations

import functools

import numba
import numpy as np

from xcorr.algo.rowpass import COLUMN_SIZES, add_column_four_rows, correlate_3x3_four_rows
from xcorr.algo.saturation import store_row, summed_in
from xcorr.algo.strips import extend_line
from xcorr.algo.threads import claim
from xcorr.padding import source_indices
from xcorr.problem import Problem

TILE_COLUMNS = 1024
"""Columns one kernel's sweeps cover before they move on, so the rows they read and the four they sum into stay in
L1/L2 across the kernel's columns (2048x2048 float32, two runs each: 9x9 8.04-8.05 -> 6.71-7.08 ms, 5x5 2.81-3.05
-> 2.57-2.72; 256 and 512 columns were slower, 2048 no faster than untiled)."""


def covers(problem: Problem) -> bool:
    """Whether the four-row sweeps compute ``problem`` exactly (see the module docstring).

    Example:
        >>> covers(Problem((1, 1, 64, 512), (1, 1, 12, 3)))  # kernel rows in a group of 7 and one of 5
        True
        >>> covers(Problem((1, 1, 64, 512), (1, 1, 6, 6)))  # no groups make six rows
        False
    """
    _, channels_per_group, kh, kw = problem.weight_shape
    if problem.stride != (1, 1) or problem.dilation[0] != 1:
        return False
    if (kh, kw) == (3, 3):
        return channels_per_group == 1
    return row_groups(kh) is not None


@functools.lru_cache(maxsize=256)
def row_groups(kh: int) -> tuple[int, ...] | None:
    """The groups of kernel rows the sweeps take for ``kh`` rows, sizes from
    :data:`~xcorr.algo.rowpass.COLUMN_SIZES`: the fewest groups that make ``kh`` (each group is one sweep per kernel
    column), then the fewest of the smallest size, larger groups first; ``None`` where none make ``kh`` (1-3, 6)
    and for a lone group of the smallest size (4 rows: it ran 1.1x slower than one output row at a time).

    Example:
        >>> row_groups(17), row_groups(9), row_groups(4)
        ((7, 5, 5), (5, 4), None)
    """
    smallest = min(COLUMN_SIZES)
    best: dict[int, tuple[int, ...]] = {0: ()}
    for total in range(1, kh + 1):
        options = [tuple(sorted((*best[total - s], s), reverse=True)) for s in COLUMN_SIZES if total - s in best]
        if options:
            best[total] = min(options, key=lambda groups: (len(groups), groups.count(smallest)))
    groups = best.get(kh)
    return None if groups is None or groups == (smallest,) else groups


def row_sources(height: int, top: int, bottom: int, boundary: str) -> np.ndarray:
    """The input row each padded row reads (:func:`xcorr.padding.source_indices`), plus three zero rows (-1): a
    last, partial block of four rows reads up to three rows past the padding.

    Example:
        >>> row_sources(3, 1, 1, "reflect").tolist()
        [1, 0, 1, 2, 1, -1, -1, -1]
    """
    return np.append(source_indices(height, top, bottom, boundary), np.full(3, -1, np.int64))


@numba.njit(cache=True, nogil=True)
def correlate_blocks(  # type: ignore[no-untyped-def]
    x2, w4, y2, schedule, channels, height, groups, out_height, dilation_x, extension, splits, limits
):
    """The tasks claimed from ``schedule`` (blocks of four rows) of ``y2`` (N*O*Ho, Wo) from ``x2`` (N*C*H, W) and
    ``w4`` (O, C // groups, kh, kw), a problem :func:`covers` accepts; ``extension`` is ``(top, left, row_source,
    col_source)``: the padding before, and the input row and column each padded one reads (-1: zero);
    ``splits``: the kernel's rows in groups (:func:`row_groups`); ``limits``: ``None``, or an integer ``y2``'s
    range, each block then summed in ``w4``'s dtype and its rows rounded into ``y2``
    (:func:`~xcorr.algo.saturation.store_row`)."""
    top, left, row_source, col_source = extension
    channels_per_group, kh, kw = w4.shape[1:]
    width, out_width = x2.shape[1], y2.shape[1]
    reach = (kw - 1) * dilation_x
    # Interior: output columns whose every tap reads inside [0, width).
    lo = min(out_width, left)
    hi = max(lo, min(out_width, width + left - reach))
    rows = kh + 3
    window = np.zeros((rows, width), x2.dtype)
    edge = np.zeros((rows, max(lo, out_width - hi) + reach), x2.dtype)
    scratch = np.empty((4, out_width), w4.dtype)
    while True:
        first, stop = claim(schedule)
        if first == stop:
            return
        for task in range(first, stop):
            block = block_of(task, y2, scratch, out_height, w4.shape[0], groups, channels, channels_per_group)
            r, o, first_channel, out_row, out = block
            q = r - top  # input row of the block's first kernel row
            for ci in range(channels_per_group):
                src = rows_read(x2, (first_channel + ci) * height, q, height, window, row_source[r : r + rows])
                for a, b in ((lo, hi), (0, lo), (hi, out_width)):  # the interior, then the borders
                    if a >= b:
                        continue
                    source, start = src, a - left
                    if a != lo or b != hi:  # a border: a copy of the (extended) input columns it reads
                        for s in range(rows):
                            extend_line(edge[s], src[s], col_source, 0, b - a + reach, a)
                        source, start = edge, 0
                    # One call site: numba re-optimises a called kernel once per site.
                    _sweep(out, a, b - a, source, start, w4[o, ci], dilation_x, splits, ci == 0)
            if limits is not None or r + 4 > out_height:  # the block was summed in scratch
                for u in range(min(4, out_height - r)):
                    store_row(y2[out_row + u], scratch[u], limits)


@numba.njit(cache=True, nogil=True)
def block_of(  # type: ignore[no-untyped-def]
    task, y2, scratch, out_height, out_channels, groups, channels, channels_per_group
):
    """Block ``task`` of four output rows of ``y2`` (N*O*Ho, Wo): its first row in its plane, its output channel,
    the first input channel of its group, its first row in ``y2``, and the rows to sum into: those of ``y2``, or
    ``scratch`` (4, Wo) for a last, partial block and for integer rows (:func:`~xcorr.algo.saturation.summed_in`),
    which the caller then stores."""
    blocks = (out_height + 3) // 4
    plane, r = task // blocks, task % blocks * 4
    n, o = plane // out_channels, plane % out_channels
    first_channel = n * channels + (o // (out_channels // groups)) * channels_per_group
    out_row = plane * out_height + r
    out = summed_in(y2[out_row : out_row + 4], scratch) if r + 4 <= out_height else scratch
    return r, o, first_channel, out_row, out


@numba.njit(cache=True, nogil=True)
def rows_read(x2, channel, q, height, window, sources):  # type: ignore[no-untyped-def]
    """Input rows ``q .. q + len(window)`` of the channel whose ``height`` rows start at row ``channel`` of ``x2``:
    a view of ``x2`` when all lie inside the image, else ``window`` filled with rows ``sources`` (the input row
    each window row reads, as :func:`xcorr.padding.source_indices`; -1: a zero row)."""
    rows = window.shape[0]
    if q >= 0 and q + rows <= height:
        return x2[channel + q : channel + q + rows]
    for s in range(rows):
        if sources[s] >= 0:
            window[s] = x2[channel + sources[s]]
        else:
            window[s] = 0
    return window


@numba.njit(inline="always")  # compiled as part of correlate_blocks, not on its own (a shorter first compile)
def _sweep(out, lo, n, src, start, w2, dilation_x, splits, store):  # type: ignore[no-untyped-def]
    """``out[u, lo + c] (+)= sum_ij w2[i, j] * src[u + i, start + c + j * dilation_x]`` for ``u < 4``, ``c < n``:
    one input channel's kernel ``w2`` (kh, kw) over the rows ``src`` (kh + 3, W), its rows grouped by
    ``splits``; ``store`` for the first channel."""
    kh, kw = w2.shape
    if kh == 3 and kw == 3:  # one channel (covers): store is True
        correlate_3x3_four_rows(out, lo, n, src, start, w2, dilation_x)
        return
    if store:
        out[:, lo : lo + n] = 0
    for tile in range(0, n, TILE_COLUMNS):
        count = min(TILE_COLUMNS, n - tile)
        g = 0
        for size in splits:  # the groups of kernel rows (row_groups), each swept one kernel column at a time
            rows = src[g : g + size + 3]
            for j in range(kw):
                add_column_four_rows(out, lo + tile, count, rows, start + tile + j * dilation_x, w2[g : g + size, j])
            g += size
