"""How the ``map_overlap`` route cuts a spatial axis: output chunks over their input chunks, and the halo depth."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AxisTiling:
    """How one spatial axis is cut: output chunks, the padded input's chunks, and the rows each block reads past
    its end (``extent - stride``, from the next chunk)."""

    out_chunks: tuple[int, ...]
    padded_chunks: tuple[int, ...]
    depth: int


def tile_axis(in_chunks: Sequence[int], before: int, after: int, extent: int, stride: int) -> AxisTiling:
    """Cut one axis of a valid, strided correlation of the input padded by ``before``/``after``.

    Output ``i`` reads padded positions ``[stride * i, stride * i + extent)``, centred on input position
    ``stride * i - before + (extent - 1) // 2``; the output is cut where that centre crosses an input chunk
    boundary, so every output chunk lies over its input chunk (``mode="same"``: the same chunks).
    """
    padded = sum(in_chunks) + before + after
    out_len = (padded - extent) // stride + 1
    centre = (extent - 1) // 2
    ends = np.cumsum(in_chunks)[:-1]
    cuts = sorted({-(-(int(end) + before - centre) // stride) for end in ends} & set(range(1, out_len)))
    sizes = np.diff([0, *cuts, out_len]).tolist()
    depth = max(extent - stride, 0)
    out_chunks = _merge_small(sizes, minimum=max(1, -(-depth // stride)))
    last = padded - stride * (out_len - out_chunks[-1])
    return AxisTiling(out_chunks, (*(stride * c for c in out_chunks[:-1]), last), depth)


def _merge_small(sizes: Sequence[int], minimum: int) -> tuple[int, ...]:
    """Merge chunks smaller than ``minimum`` into the next one (the last into the one before)."""
    merged: list[int] = []
    for size in sizes:
        if merged and merged[-1] < minimum:
            merged[-1] += size
        else:
            merged.append(size)
    if len(merged) > 1 and merged[-1] < minimum:
        last = merged.pop()
        merged[-1] += last
    return tuple(merged)
