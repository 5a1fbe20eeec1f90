"""``filter2d`` and ``conv2d`` on Dask arrays: the array is extended lazily past its outer edge
(:mod:`xcorr.dask.extension`), cut into blocks that overlap by the kernel's halo (:mod:`xcorr.dask.tiling`), and
each block is correlated in ``"valid"`` mode by one ``map_overlap`` task (:mod:`xcorr.dask.tasks`)."""

from __future__ import annotations

import dask.array as da
import numpy as np

from xcorr import arguments, functional
from xcorr.arguments import ArrayLike
from xcorr.dask.checks import check_algo, check_dask_array, check_threads, host_array
from xcorr.dask.extension import extend
from xcorr.dask.tasks import conv_block, filter_block
from xcorr.dask.tiling import tile_axis

__all__ = ["conv2d", "filter2d"]


def filter2d(
    array: da.Array,
    kernel: ArrayLike,
    *,
    mode: str = "same",
    boundary: str = "constant",
    cval: float = 0.0,
    algo: str = "auto",
    threads_per_task: int = 1,
) -> da.Array:
    """:func:`xcorr.filter2d` on a Dask array, lazily, chunk by chunk.

    Args:
        array: (H, W) or (..., H, W) Dask array, any chunking; leading axes are a batch (each (H, W) slice is
            filtered with the same kernel).
        kernel: (kh, kw) NumPy array, torch tensor or nested list; small (it is copied into every task).
        mode, boundary, cval, algo: as :func:`xcorr.filter2d` ("valid"/"same"/"full"; ``numpy.pad`` boundary
            names). The boundary is applied at the array's outer edge only; chunk edges see their neighbours.
        threads_per_task: torch/numba threads each chunk's call uses (see the module docstring for the rule).

    Returns:
        A lazy (..., Ho, Wo) Dask array of NumPy chunks, of the dtype :func:`xcorr.filter2d` returns (integers
        -> float32). Batch axes keep their chunks; spatial chunks lie over the input chunks they come from (the
        same chunks for ``mode="same"``, except that chunks smaller than the kernel are merged with a neighbour).

    Example:
        >>> import dask.array as da, numpy as np
        >>> image = da.from_array(np.arange(36.0).reshape(6, 6), chunks=4)
        >>> out = filter2d(image, np.ones((3, 3)) / 9, boundary="reflect")
        >>> out.chunks
        ((4, 2), (4, 2))
        >>> float(out[0, 0].compute())  # mean of rows [1, 0, 1] x columns [1, 0, 1]: reflect at the edge
        4.666666666666667
    """
    check_dask_array(array, "array", "(H, W) or (..., H, W)", range(2, 64))
    weights = host_array(kernel)
    probe_size = tuple(max(s, 1) for s in weights.shape) if weights.ndim == 2 else (1, 1)
    probe = functional.filter2d(
        np.zeros(probe_size, array.dtype), weights, mode=mode, boundary=boundary, cval=cval
    )  # validates mode, boundary, kernel and dtypes exactly as the in-memory call, and gives the result dtype
    check_algo(algo)
    check_threads(threads_per_task)
    cval = arguments.check_cval(cval)
    (h, w), (kh, kw) = array.shape[-2:], weights.shape
    arguments.check_not_empty((h, w), "array")
    if mode == "valid":
        arguments.fits_or_raise((h, w), (kh, kw), "use mode='same' or pad the input")
    top, bottom, left, right = arguments.mode_padding(mode, (kh, kw))
    rows = tile_axis(array.chunks[-2], top, bottom, kh, 1)
    cols = tile_axis(array.chunks[-1], left, right, kw, 1)
    padded = extend(array.astype(probe.dtype), (top, bottom, left, right), boundary, cval)
    padded = padded.rechunk((*array.chunks[:-2], rows.padded_chunks, cols.padded_chunks))
    result: da.Array = da.map_overlap(
        filter_block,
        padded,
        depth={
            **dict.fromkeys(range(array.ndim - 2), 0),
            array.ndim - 2: (0, rows.depth),
            array.ndim - 1: (0, cols.depth),
        },
        boundary="none",
        trim=False,
        allow_rechunk=False,
        chunks=(*array.chunks[:-2], rows.out_chunks, cols.out_chunks),
        dtype=probe.dtype,
        meta=np.empty((0,) * array.ndim, probe.dtype),
        kernel=weights,
        algo=algo,
        threads=threads_per_task,
    )
    return result


def conv2d(
    input: da.Array,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    *,
    algo: str = "auto",
    threads_per_task: int = 1,
) -> da.Array:
    """:func:`xcorr.conv2d` (``torch.nn.functional.conv2d`` semantics) on a Dask array, lazily, chunk by chunk.

    Args:
        input: (N, C, H, W) or unbatched (C, H, W) Dask array. N and the spatial axes may have any chunking;
            the channel axis is gathered into one chunk (a correlation needs all channels of a pixel).
        weight: (O, C // groups, kh, kw) NumPy array or torch tensor; ``bias`` optional (O,).
        stride, padding, dilation, groups, padding_mode, algo: as :func:`xcorr.conv2d`.
        threads_per_task: torch/numba threads each chunk's call uses (see the module docstring for the rule).

    Returns:
        A lazy (N, O, Ho, Wo) (or (O, Ho, Wo)) Dask array of NumPy chunks; N keeps its chunks, O is one chunk.
        Not differentiable: use :func:`xcorr.conv2d` on tensors for training.

    Example:
        >>> import dask.array as da, numpy as np
        >>> x = da.ones((4, 3, 10, 10), chunks=(2, 3, 5, 5), dtype=np.float32)
        >>> y = conv2d(x, np.ones((8, 3, 3, 3), np.float32), stride=2, padding=1)
        >>> y.shape, y.chunks[0]
        ((4, 8, 5, 5), (2, 2))
    """
    check_dask_array(input, "input", "(N, C, H, W) or unbatched (C, H, W)", (3, 4))
    if input.ndim == 3:
        batched: da.Array = conv2d(
            input[None],
            weight,
            bias,
            stride,
            padding,
            dilation,
            groups,
            padding_mode,
            algo=algo,
            threads_per_task=threads_per_task,
        )
        unbatched: da.Array = batched[0]
        return unbatched
    w = host_array(weight)
    b = None if bias is None else host_array(bias)
    if w.ndim != 4:
        raise ValueError(f"weight must be (out_channels, in_channels // groups, kh, kw), got shape {w.shape}")
    stride_pair = arguments.pair(stride, "stride", minimum=1)
    dilation_pair = arguments.pair(dilation, "dilation", minimum=1)
    extent = (dilation_pair[0] * (w.shape[2] - 1) + 1, dilation_pair[1] * (w.shape[3] - 1) + 1)
    probe = functional.conv2d(
        np.zeros((1, input.shape[1], *extent), input.dtype), w, b, stride_pair, 0, dilation_pair, groups
    )  # validates channels, groups, bias and dtypes exactly as the in-memory call, and gives the result dtype
    boundary = arguments.check_padding_mode(padding_mode)
    quad = arguments.conv_padding(padding, (w.shape[2], w.shape[3]), dilation_pair, stride_pair)
    check_algo(algo)
    check_threads(threads_per_task)
    arguments.check_not_empty(input.shape[2:], "input")
    padded_size = (input.shape[2] + quad[0] + quad[1], input.shape[3] + quad[2] + quad[3])
    if extent[0] > padded_size[0] or extent[1] > padded_size[1]:
        raise ValueError(
            f"padded input {padded_size[0]}x{padded_size[1]} is smaller than the dilated kernel "
            f"{extent[0]}x{extent[1]}; pass more padding or a smaller kernel"
        )
    rows = tile_axis(input.chunks[2], quad[0], quad[1], extent[0], stride_pair[0])
    cols = tile_axis(input.chunks[3], quad[2], quad[3], extent[1], stride_pair[1])
    padded = extend(input.astype(probe.dtype), quad, boundary, 0.0)
    padded = padded.rechunk((input.chunks[0], input.shape[1], rows.padded_chunks, cols.padded_chunks))
    result: da.Array = da.map_overlap(
        conv_block,
        padded,
        depth={0: 0, 1: 0, 2: (0, rows.depth), 3: (0, cols.depth)},
        boundary="none",
        trim=False,
        allow_rechunk=False,
        chunks=(input.chunks[0], (w.shape[0],), rows.out_chunks, cols.out_chunks),
        dtype=probe.dtype,
        meta=np.empty((0, 0, 0, 0), probe.dtype),
        weight=w,
        bias=b,
        stride=stride_pair,
        dilation=dilation_pair,
        groups=groups,
        algo=algo,
        threads=threads_per_task,
    )
    return result
