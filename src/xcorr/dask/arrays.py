"""``filter2d``, ``conv2d`` and ``match_template`` on Dask arrays: the array is extended lazily past its outer edge
(:mod:`xcorr.dask.extension`), cut into blocks that overlap by the kernel's halo (:mod:`xcorr.dask.tiling`), and
each block is computed in ``"valid"`` mode by one ``map_overlap`` task (:mod:`xcorr.dask.tasks`), all three through
one helper (:func:`_with_halo`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dask.array as da
import numpy as np

from xcorr import arguments, functional, matching
from xcorr.arguments import ArrayLike
from xcorr.dask.checks import check_algo, check_dask_array, check_threads, host_array
from xcorr.dask.extension import extend
from xcorr.dask.tasks import conv_block, filter_block, match_block
from xcorr.dask.tiling import AxisTiling, tile_axis

__all__ = ["conv2d", "filter2d", "match_template"]


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
    chunks = (*array.chunks[:-2], rows.out_chunks, cols.out_chunks)
    return _with_halo(
        filter_block, [padded], (rows, cols), chunks, probe.dtype, kernel=weights, algo=algo, threads=threads_per_task
    )


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
    chunks = (input.chunks[0], (w.shape[0],), rows.out_chunks, cols.out_chunks)
    settings = {"stride": stride_pair, "dilation": dilation_pair, "groups": groups, "algo": algo}
    return _with_halo(
        conv_block, [padded], (rows, cols), chunks, probe.dtype, weight=w, bias=b, threads=threads_per_task, **settings
    )


def match_template(
    image: da.Array,
    template: ArrayLike,
    *,
    method: str = "ccoeff_normed",
    mask: ArrayLike | None = None,
    image_mask: da.Array | ArrayLike | None = None,
    mode: str = "valid",
    threads_per_task: int = 1,
) -> da.Array:
    """:func:`xcorr.match_template` on a Dask image, lazily, chunk by chunk (images larger than memory).

    Args:
        image: (H, W) Dask array, any chunking and real dtype.
        template: (h, w), or (n, h, w) for n templates of one size; ``mask`` optional (h, w) template weights
            (NumPy arrays or tensors: copied into every task).
        image_mask: optional (H, W) image pixels to use (nonzero) or ignore (0), a Dask or NumPy array.
        method, mode: as :func:`xcorr.match_template`; ``"same"`` / ``"full"`` extend the image with zeros (with
            ``image_mask``: ignored pixels), exactly as the in-memory call.
        threads_per_task: torch/numba threads each chunk's call uses (see the package docstring for the rule).

    Returns:
        A lazy (Ho, Wo) (or (n, Ho, Wo)) Dask array of NumPy chunks: each chunk is the in-memory call on its input
        chunk plus a halo of ``h - 1`` rows and ``w - 1`` columns of the next chunks, so its values are the
        in-memory call's (window sums are taken per chunk: within floating-point rounding of them). Colour images
        (``channel_axis``) are not taken here: match each channel's plane, or compute in memory.

    Example:
        >>> import dask.array as da, numpy as np
        >>> rng = np.random.default_rng(0)
        >>> picture = rng.random((60, 80))
        >>> scores = match_template(da.from_array(picture, chunks=32), picture[20:28, 30:40])
        >>> scores.shape, np.unravel_index(int(scores.argmax().compute()), scores.shape)
        ((53, 71), (np.int64(20), np.int64(30)))
    """
    check_dask_array(image, "image", "(H, W)", (2,))
    templates = host_array(template)
    weights = None if mask is None else host_array(mask)
    if templates.ndim not in (2, 3):
        raise ValueError(f"template must be (h, w) or (n, h, w), got shape {templates.shape}")
    h, w = templates.shape[-2:]
    probe = matching.match_template(
        np.zeros((max(h, 1), max(w, 1)), image.dtype), templates, method=method, mask=weights
    )  # validates the template, mask and method exactly as the in-memory call, and gives the result dtype
    check_threads(threads_per_task)
    arguments.check_not_empty(image.shape, "image")
    quad = arguments.mode_padding(mode, (h, w))
    if mode == "valid":
        arguments.fits_or_raise(image.shape, (h, w), "use mode='same' or mode='full'")
    rows = tile_axis(image.chunks[0], quad[0], quad[1], h, 1)
    cols = tile_axis(image.chunks[1], quad[2], quad[3], w, 1)
    arrays = [image]
    if image_mask is not None:
        used = image_mask if isinstance(image_mask, da.Array) else da.from_array(host_array(image_mask))
        if used.shape != image.shape:
            raise ValueError(f"image_mask must have the image's shape {image.shape}, got {used.shape}")
        arrays.append(used.rechunk(image.chunks))
    padded = [extend(a, quad, "constant", 0.0).rechunk((rows.padded_chunks, cols.padded_chunks)) for a in arrays]
    chunks = ((templates.shape[0],) if templates.ndim == 3 else ()) + (rows.out_chunks, cols.out_chunks)
    return _with_halo(
        match_block,
        padded,
        (rows, cols),
        chunks,
        np.asarray(probe).dtype,
        template=templates,
        mask=weights,
        method=method,
        threads=threads_per_task,
    )


def _with_halo(
    task: Callable[..., np.ndarray],
    arrays: list[da.Array],
    tiling: tuple[AxisTiling, AxisTiling],
    chunks: tuple[tuple[int, ...], ...],
    dtype: np.dtype[Any],
    **settings: Any,
) -> da.Array:
    """``task`` on every block of ``arrays`` (extended and cut by ``tiling`` along their last two axes) plus the
    halo of the next blocks that ``tiling`` asks for: the lazy result of the given output ``chunks`` (extra
    leading output axes, such as one per template, are new axes of one chunk)."""
    ndim = arrays[0].ndim
    rows, cols = tiling
    new_axes = list(range(len(chunks) - ndim))
    result: da.Array = da.map_overlap(
        task,
        *arrays,
        depth={**dict.fromkeys(range(ndim - 2), 0), ndim - 2: (0, rows.depth), ndim - 1: (0, cols.depth)},
        boundary="none",
        trim=False,
        allow_rechunk=False,
        chunks=chunks,
        new_axis=new_axes or None,
        dtype=dtype,
        meta=np.empty((0,) * len(chunks), dtype),
        **settings,
    )
    return result
