"""Float results written as integer samples, as OpenCV's ``saturate_cast``: rounded half to even, then saturated.

The threaded pass :func:`write_saturated` rounds a whole result; the kernels that write integer samples
themselves (the direct algorithm's, for 8- and 16-bit photos) sum each row in float scratch (:func:`summed_in`)
and round it into the result with :func:`store_row` when it is finished, so no float result the size of the image
is written and read back. NaN becomes the dtype's minimum (0 for unsigned types), as OpenCV's.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch
from numba.extending import overload
from torch import Tensor

from xcorr.algo.threads import claim, run_tasks

SATURATE_BLOCK = 1 << 16
"""Values per task of the threaded rounding (a few per thread even for a small photo)."""
SATURATE_SECONDS_PER_VALUE = 4e-10
# torch's unsigned types beyond uint8 that NumPy views but numba's casts do not cover identically.
_NUMBA_LESS_DTYPES = (torch.uint32, torch.uint64)


def bounds(dtype: torch.dtype, float_dtype: torch.dtype) -> tuple[float, float]:
    """The range of the integer ``dtype`` as values of ``float_dtype``: ``high`` is the largest one that casts
    inside it (2**31 - 1 is 2**31 in float32: the largest float below it).

    Example:
        >>> bounds(torch.uint8, torch.float32), bounds(torch.int32, torch.float32)
        ((0.0, 255.0), (-2147483648.0, 2147483520.0))
    """
    info = torch.iinfo(dtype)
    low, high = torch.tensor(float(info.min), dtype=float_dtype), torch.tensor(float(info.max), dtype=float_dtype)
    if float(high) > info.max:
        high = torch.nextafter(high, torch.zeros_like(high))
    return float(low), float(high)


def limits(dtype: torch.dtype, float_dtype: torch.dtype) -> tuple[np.floating, np.floating]:
    """:func:`bounds` as scalars of ``float_dtype``'s NumPy type: the ``limits`` the kernels round into (no float64
    detour in their comparisons).

    Example:
        >>> limits(torch.uint8, torch.float32)
        (np.float32(0.0), np.float32(255.0))
    """
    scalar = torch.empty(0, dtype=float_dtype).numpy().dtype.type
    low, high = bounds(dtype, float_dtype)
    return scalar(low), scalar(high)


def rounds_in_kernels(dtype: torch.dtype) -> bool:
    """Whether numba kernels can write the integer ``dtype`` (every one but torch's uint32 and uint64)."""
    return not dtype.is_floating_point and dtype not in _NUMBA_LESS_DTYPES


def write_saturated(y: Tensor, destination: Tensor) -> None:
    """``destination[...] = y`` rounded half to even and saturated to ``destination``'s integer dtype, as OpenCV's
    ``saturate_cast`` (NaN becomes the dtype's minimum, 0 for unsigned types).

    One threaded pass where both are contiguous CPU tensors (float32/float64 in); else torch's rounding, clamping
    and cast.

    Example:
        >>> out = torch.empty(4, dtype=torch.int8)
        >>> write_saturated(torch.tensor([2.5, 3.5, -200.0, float("nan")]), out)
        >>> out
        tensor([   2,    4, -128, -128], dtype=torch.int8)
    """
    if (
        y.device.type == destination.device.type == "cpu"
        and y.dtype in (torch.float32, torch.float64)
        and y.is_contiguous()
        and destination.is_contiguous()
        and rounds_in_kernels(destination.dtype)
    ):
        values, samples = y.view(-1).numpy(), destination.view(-1).numpy()
        samples_range = limits(destination.dtype, y.dtype)
        run_tasks(
            _round_blocks,
            (values, samples),
            (samples_range,),
            math.ceil(values.size / SATURATE_BLOCK),
            values.size * SATURATE_SECONDS_PER_VALUE,
        )
        return
    low, high = bounds(destination.dtype, y.dtype if y.dtype.is_floating_point else torch.float64)
    destination.copy_(y.round().nan_to_num_(nan=low).clamp_(low, high))  # torch.round is half to even


@numba.njit(cache=True, nogil=True)
def _round_blocks(values, samples, schedule, limits):  # type: ignore[no-untyped-def]
    """The blocks (of :data:`SATURATE_BLOCK` values) claimed from ``schedule``, of :func:`store_row` over 1-D
    arrays."""
    while True:
        first, stop = claim(schedule)
        if first == stop:
            return
        span = slice(first * SATURATE_BLOCK, stop * SATURATE_BLOCK)
        store_row(samples[span], values[span], limits)


@numba.njit(cache=True, nogil=True)
def store_row(row, values, limits):  # type: ignore[no-untyped-def]
    """``row[:] = values``: as they are for ``limits=None``, else rounded half to even and saturated to
    ``limits = (low, high)`` (NaN -> low). A plain range over whole (sliced) arrays, which LLVM vectorises
    (numba's ``row[:] = values`` checks the two for overlap first, which cost more than copying a 64-value row)."""
    if limits is None:  # pruned at compile time: a float row
        for i in range(values.size):
            row[i] = values[i]
        return
    low, high = limits
    for i in range(values.size):
        r = np.rint(values[i])
        r = r if r > low else low
        row[i] = r if r < high else high


def summed_in(rows: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Where a kernel sums result ``rows``: in place where they hold the summing dtype (``scratch``'s), else in
    ``scratch`` (integer rows, stored when finished with :func:`store_row`). In numba the choice is made at compile
    time, by dtype (:func:`_summed_in`).

    Example:
        >>> summed_in(np.zeros(3, np.uint8), np.zeros(3, np.float32)).dtype
        dtype('float32')
    """
    return rows if rows.dtype == scratch.dtype else scratch


@overload(summed_in)
def _summed_in(rows, scratch):  # type: ignore[no-untyped-def]
    """:func:`summed_in` in numba: one branch compiled per dtype pair (a variable cannot hold either array)."""
    if rows.dtype == scratch.dtype:
        return lambda rows, scratch: rows
    return lambda rows, scratch: scratch
