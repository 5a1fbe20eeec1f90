"""``numpy.pad`` of a Dask array's two last axes, lazily, for any pad width (``dask.array.pad`` is wrong for pads
wider than the array): the ``map_overlap`` route extends the whole array once, so no chunk handles the edge."""

from __future__ import annotations

from collections.abc import Iterator

import dask.array as da
import numpy as np

from xcorr.padding import source_indices


def extend(x: da.Array, padding: tuple[int, int, int, int], boundary: str, cval: float) -> da.Array:
    """``numpy.pad(x, (..., (top, bottom), (left, right)), mode=boundary)``, lazily, for any pad width."""
    top, bottom, left, right = padding
    return _extend_axis(
        _extend_axis(x, x.ndim - 2, top, bottom, boundary, cval), x.ndim - 1, left, right, boundary, cval
    )


def _extend_axis(x: da.Array, axis: int, before: int, after: int, boundary: str, cval: float) -> da.Array:
    if before == after == 0:
        return x
    size = x.shape[axis]
    if boundary == "constant":

        def fill(width: int) -> da.Array:
            shape = (*x.shape[:axis], width, *x.shape[axis + 1 :])
            chunks = (*x.chunks[:axis], (width,), *x.chunks[axis + 1 :])
            filled: da.Array = da.full(shape, cval, dtype=x.dtype, chunks=chunks)
            return filled

        pieces = [fill(before), x, fill(after)]
    else:
        index = source_indices(size, before, after, boundary)
        pieces = [*_gather(x, axis, index[:before]), x, *_gather(x, axis, index[before + size :])]
    extended: da.Array = da.concatenate([p for p in pieces if p.shape[axis]], axis=axis)
    return extended


def _gather(x: da.Array, axis: int, index: np.ndarray) -> Iterator[da.Array]:
    """``x`` taken at ``index`` along ``axis``, as slices: one per run of consecutive (or reversed) indices."""
    start = 0
    while start < len(index):
        step = int(index[start + 1] - index[start]) if start + 1 < len(index) else 1
        step = step if step in (1, -1) else 1
        stop = start + 1
        while stop < len(index) and index[stop] - index[stop - 1] == step:
            stop += 1
        low, high = sorted((int(index[start]), int(index[stop - 1])))
        piece = x[(slice(None),) * axis + (slice(low, high + 1),)]
        yield piece if step == 1 else da.flip(piece, axis)
        start = stop
