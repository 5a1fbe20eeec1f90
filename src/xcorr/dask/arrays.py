"""xcorr on Dask arrays: images larger than memory and batches larger than one machine, with the same results.

``xcorr.dask.filter2d`` and ``xcorr.dask.conv2d`` take a ``dask.array.Array`` and return a lazy one whose computed
values equal :func:`xcorr.filter2d` / :func:`xcorr.conv2d` on the whole array in memory, for every mode, boundary,
stride, dilation and padding mode, at chunk edges and at the array's outer edge. Each output chunk is one call of
the in-memory function on its input chunk plus a halo, so every chunk gets xcorr's planned (fast) algorithm:

1. the whole array is extended lazily past its outer edge exactly as ``numpy.pad`` would (any width, every mode;
   ``dask.array.pad`` is wrong for pads wider than the array), so no chunk needs to know where the edge is;
2. the extended array is cut so that output chunk ``j`` reads padded rows ``[stride * a_j, stride * a_{j+1})``
   plus ``extent - stride`` rows of the next chunk (an asymmetric ``map_overlap`` depth; even kernels need no
   special case), chunks smaller than that halo being merged with a neighbour first;
3. each block is correlated in ``"valid"`` mode. Output chunks lie over the input chunks they come from
   (``mode="same"`` keeps the input's chunks exactly).

``filter_to_zarr`` from a stored array (a Zarr or TIFF path) needs no such graph: each task reads its output
chunk's window, halo and outer boundary included, straight from the store (the boundary by index mapping, as
``numpy.pad``), filters it in ``"valid"`` mode and writes the chunk. The tasks are independent, so memory is one
window per worker thread, whatever the image size and whatever order the scheduler picks.

Threads: Dask already runs one task per worker thread and sizes its pools to the cores (the threaded scheduler
has one thread per core; a ``LocalCluster`` splits the cores among workers x threads), so each task runs the
kernel with ``threads_per_task=1`` torch (and numba, which follows torch) thread by default: never more threads
than cores. Give a task more (``threads_per_task = cores per worker // threads per worker``) only when a worker has
fewer threads than cores, e.g. ``dask worker --nthreads 1`` on an 8-core machine. Each task sets torch's thread
count in its own thread; the caller's setting is restored when the last xcorr task ends.

The core package never imports this module (or Dask): ``pip install xcorr[dask]``, then ``import xcorr.dask``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import torch
import zarr
from dask.base import compute, get_scheduler, tokenize
from dask.callbacks import Callback

from xcorr import arguments, functional
from xcorr.algo import get_algorithm
from xcorr.arguments import ArrayLike
from xcorr.padding import source_indices

__all__ = ["conv2d", "filter2d", "filter_to_zarr", "open_array"]

Progress = Callable[[int, int], None]
"""``progress(done, total)``: called after each output chunk is written, with the chunk counts."""

MIN_READ_CHUNK = 1024
"""``open_array`` enlarges stored chunks (TIFF strips, small Zarr chunks) to at least this many pixels a side."""


# --------------------------------------------------------------------------------------------- public functions


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
    _check_dask_array(array, "array", "(H, W) or (..., H, W)", range(2, 64))
    weights = _host_array(kernel)
    probe_size = tuple(max(s, 1) for s in weights.shape) if weights.ndim == 2 else (1, 1)
    probe = functional.filter2d(
        np.zeros(probe_size, array.dtype), weights, mode=mode, boundary=boundary, cval=cval
    )  # validates mode, boundary, kernel and dtypes exactly as the in-memory call, and gives the result dtype
    _check_algo(algo)
    _check_threads(threads_per_task)
    (h, w), (kh, kw) = array.shape[-2:], weights.shape
    arguments.check_not_empty((h, w), "array")
    if mode == "valid":
        arguments.fits_or_raise((h, w), (kh, kw), "use mode='same' or pad the input")
    top, bottom, left, right = arguments.mode_padding(mode, (kh, kw))
    rows = _tile_axis(array.chunks[-2], top, bottom, kh, 1)
    cols = _tile_axis(array.chunks[-1], left, right, kw, 1)
    padded = _extend(array.astype(probe.dtype), (top, bottom, left, right), boundary, cval)
    padded = padded.rechunk((*array.chunks[:-2], rows.padded_chunks, cols.padded_chunks))
    result: da.Array = da.map_overlap(
        _filter_block,
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
    _check_dask_array(input, "input", "(N, C, H, W) or unbatched (C, H, W)", (3, 4))
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
    w = _host_array(weight)
    b = None if bias is None else _host_array(bias)
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
    _check_algo(algo)
    _check_threads(threads_per_task)
    arguments.check_not_empty(input.shape[2:], "input")
    padded_size = (input.shape[2] + quad[0] + quad[1], input.shape[3] + quad[2] + quad[3])
    if extent[0] > padded_size[0] or extent[1] > padded_size[1]:
        raise ValueError(
            f"padded input {padded_size[0]}x{padded_size[1]} is smaller than the dilated kernel "
            f"{extent[0]}x{extent[1]}; pass more padding or a smaller kernel"
        )
    rows = _tile_axis(input.chunks[2], quad[0], quad[1], extent[0], stride_pair[0])
    cols = _tile_axis(input.chunks[3], quad[2], quad[3], extent[1], stride_pair[1])
    padded = _extend(input.astype(probe.dtype), quad, boundary, 0.0)
    padded = padded.rechunk((input.chunks[0], input.shape[1], rows.padded_chunks, cols.padded_chunks))
    result: da.Array = da.map_overlap(
        _conv_block,
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


def open_array(path: str | Path, *, chunks: int | Any = None) -> da.Array:
    """A Zarr array or a TIFF file as a lazy Dask array of (..., H, W) planes, read chunk by chunk.

    Args:
        path: a Zarr v2/v3 array (directory or ``.zip`` store), or a ``.tif``/``.tiff`` file (read through
            ``tifffile``'s Zarr view of its tiles or strips: nothing is read up front). Colour TIFFs (samples
            last) come back as (S, H, W) planes.
        chunks: Dask chunks of the stored array; an int: spatial chunks of that side (the other axes keep their
            stored chunks); by default the stored chunks, enlarged to at least ``MIN_READ_CHUNK`` pixels a side
            (TIFF strips are a few rows each; one task per strip would cost more than the filter).

    Example:
        >>> image = open_array("slide.zarr")  # doctest: +SKIP
        >>> filter2d(image, np.ones((31, 31)) / 961).to_zarr("smoothed.zarr")  # doctest: +SKIP
    """
    planes = _StoredPlanes.open(path)
    return planes.lazy(chunks)


def filter_to_zarr(
    source: str | Path | da.Array,
    target: str | Path,
    kernel: ArrayLike,
    *,
    mode: str = "same",
    boundary: str = "constant",
    cval: float = 0.0,
    algo: str = "auto",
    threads_per_task: int = 1,
    chunks: int | Any = None,
    overwrite: bool = False,
    compressors: Any = "auto",
    progress: Progress | None = None,
) -> zarr.Array[Any]:
    """Filter a Zarr array or TIFF file (or any Dask array) into a new Zarr array, chunk by chunk.

    A path is read window by window: each task reads one output chunk's input window (its halo and, at the
    image's edge, the boundary's mirrored, wrapped or constant samples included) straight from the store, filters
    it in ``"valid"`` mode and writes the chunk. No task depends on another, so memory stays at about one window
    per worker thread (plus its FFT buffers) whatever the image size. A Dask array goes through
    :func:`filter2d`'s graph instead (a few chunks per thread). Runs on the current Dask scheduler (the threaded
    one by default, or a default ``distributed.Client``).

    Args:
        source: a path for :func:`open_array`, or a Dask array.
        target: the Zarr store to create; its chunks are the source's Dask chunk shape.
        kernel, mode, boundary, cval, algo, threads_per_task: as :func:`filter2d`.
        chunks: for a path, the chunks to read and write (as :func:`open_array`); ignored for a Dask array.
        overwrite: replace an existing ``target``; otherwise an existing one is an error.
        compressors: as ``zarr.create_array`` (``"auto"``: Zarr's default; ``None``: raw chunks, fastest for
            noise-like float data that does not compress).
        progress: ``progress(done, total)`` after each chunk written (e.g. a progress bar's update).

    Returns:
        The written ``zarr.Array`` (..., Ho, Wo), equal to :func:`xcorr.filter2d` on the whole source.

    Example:
        >>> filter_to_zarr("slide.zarr", "edges.zarr", xcorr.kernels.sobel_x(), boundary="edge")  # doctest: +SKIP
    """
    if isinstance(source, da.Array):
        planes, image = None, source
    else:
        planes = _StoredPlanes.open(source)
        image = planes.lazy(chunks)
    result = filter2d(  # validates every argument; its graph is used for Dask array sources only
        image, kernel, mode=mode, boundary=boundary, cval=cval, algo=algo, threads_per_task=threads_per_task
    )
    chunk_shape = tuple(max(1, min(c, s)) for c, s in zip(image.chunksize, result.shape, strict=True))
    try:
        stored = zarr.create_array(
            store=str(target),
            shape=result.shape,
            chunks=chunk_shape,
            dtype=result.dtype,
            overwrite=overwrite,
            compressors=compressors,
        )
    except zarr.errors.ContainsArrayError:
        raise ValueError(f"{target} already exists; pass overwrite=True to replace it") from None
    if planes is None:
        result = result.rechunk(chunk_shape)  # one task writes one whole stored chunk: no locks needed
        written = result.map_blocks(
            _write_block,
            target=stored,
            chunks=tuple((1,) * len(c) for c in result.chunks),
            dtype=bool,
            meta=np.empty((0,) * result.ndim, bool),
            name="xcorr-write-" + tokenize(result, str(target)),
        )
    else:
        weights = _host_array(kernel)
        padding = arguments.mode_padding(mode, weights.shape)
        window = _Window(planes, weights.shape, padding, boundary, cval, np.dtype(result.dtype))
        grid = tuple(-(-size // chunk) for size, chunk in zip(result.shape, chunk_shape, strict=True))
        written = da.zeros(grid, chunks=1, dtype=bool).map_blocks(
            _filter_window_block,
            window=window,
            target=stored,
            kernel=weights,
            algo=algo,
            threads=threads_per_task,
            dtype=bool,
            meta=np.empty((0,) * result.ndim, bool),
            name="xcorr-window-" + tokenize(str(source), str(target), weights, mode, boundary, cval, algo, chunks),
        )
    _compute_with_progress(written, progress)
    return stored


# --------------------------------------------------------------------------------------------- stored planes


@dataclass(frozen=True)
class _StoredPlanes:
    """A stored array seen as (..., H, W) planes: a Zarr array, or a TIFF's Zarr view, whose samples-last
    colour images (..., H, W, S) are seen as (S, ..., H, W). Pickled as its path (reopened where it lands: a TIFF's
    open file cannot travel to a worker process)."""

    path: Path
    array: zarr.Array[Any]
    samples_last: bool

    def __reduce__(self) -> tuple[Callable[[Path], _StoredPlanes], tuple[Path]]:
        return _StoredPlanes.open, (self.path,)

    @classmethod
    def open(cls, path: str | Path) -> _StoredPlanes:
        path = Path(path)
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                samples_last = tif.series[0].axes.endswith("S")
            view = tifffile.imread(path, aszarr=True, series=0, level=0)
            return cls(path, zarr.open_array(view, mode="r"), samples_last)
        try:
            return cls(path, zarr.open_array(path, mode="r"), False)
        except (FileNotFoundError, zarr.errors.ArrayNotFoundError, zarr.errors.NodeTypeValidationError) as error:
            raise ValueError(
                f"{path} is not a Zarr array ({error}); for a group, pass the array's path in it"
            ) from None

    @property
    def shape(self) -> tuple[int, ...]:
        shape = tuple(self.array.shape)
        return (shape[-1], *shape[:-1]) if self.samples_last else shape

    def lazy(self, chunks: Any) -> da.Array:
        """The planes as a Dask array; by default in the stored chunks, enlarged (see :func:`open_array`)."""
        if chunks is None or isinstance(chunks, int):
            chunks = _read_chunks(self.array.chunks, self.array.shape, self.samples_last, chunks)
        array: da.Array = da.from_zarr(self.array, chunks=chunks)
        planes: da.Array = da.moveaxis(array, -1, 0) if self.samples_last else array
        return planes

    def read(self, region: tuple[slice, ...]) -> np.ndarray:
        """``planes[region]`` (one basic slice per axis), read from the store."""
        if self.samples_last:
            samples_last = (*region[1:], region[0])
            return np.moveaxis(np.asarray(self.array[samples_last]), -1, 0)
        return np.asarray(self.array[region])


@dataclass(frozen=True)
class _Window:
    """Reads, from the store, the samples of the padded planes that an output region of the correlation reads."""

    planes: _StoredPlanes
    kernel_shape: tuple[int, int]
    padding: tuple[int, int, int, int]
    boundary: str
    cval: float
    dtype: np.dtype[Any]

    def read(self, out_region: tuple[slice, ...]) -> np.ndarray:
        """(..., ho + kh - 1, wo + kw - 1) padded samples under the output region (..., ho, wo)."""
        *lead, rows, cols = out_region
        height, width = self.planes.shape[-2:]
        (kh, kw), (top, bottom, left, right) = self.kernel_shape, self.padding
        row_index = self._source(height, top, bottom, rows.start, rows.stop + kh - 1)
        col_index = self._source(width, left, right, cols.start, cols.stop + kw - 1)
        row_slices, row_pos = _runs(row_index)
        col_slices, col_pos = _runs(col_index)
        parts = [[self.planes.read((*lead, r, c)) for c in col_slices] for r in row_slices]
        block = parts[0][0] if len(row_slices) == len(col_slices) == 1 else np.block(parts)
        if _is_identity(row_pos) and _is_identity(col_pos):  # an inner window: the stored samples as they are
            return block.astype(self.dtype, copy=False)
        window = block[..., row_pos.clip(0)[:, None], col_pos.clip(0)].astype(self.dtype, copy=False)
        window[..., row_pos < 0, :] = self.cval
        window[..., col_pos < 0] = self.cval
        return window

    def _source(self, size: int, before: int, after: int, start: int, stop: int) -> np.ndarray:
        """Input index of padded positions ``[start, stop)``; -1 outside the input under boundary "constant"."""
        if self.boundary == "constant":
            index = np.arange(start - before, stop - before)
            return np.where((index >= 0) & (index < size), index, -1)
        return source_indices(size, before, after, self.boundary, torch.device("cpu")).numpy()[start:stop]


def _runs(index: np.ndarray) -> tuple[list[slice], np.ndarray]:
    """Slices covering the distinct entries >= 0 of ``index``, ascending, and where each entry lies in their
    concatenation (-1 where ``index`` is -1)."""
    distinct = np.unique(index[index >= 0])
    breaks = np.flatnonzero(np.diff(distinct) != 1) + 1
    slices = [slice(int(run[0]), int(run[-1]) + 1) for run in np.split(distinct, breaks)]
    return slices, np.where(index >= 0, np.searchsorted(distinct, index), -1)


def _is_identity(positions: np.ndarray) -> bool:
    return bool(np.array_equal(positions, np.arange(len(positions))))


# --------------------------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class _AxisTiling:
    """How one spatial axis is cut: output chunks, the padded input's chunks, and the rows each block reads past
    its end (``extent - stride``, from the next chunk)."""

    out_chunks: tuple[int, ...]
    padded_chunks: tuple[int, ...]
    depth: int


def _tile_axis(in_chunks: Sequence[int], before: int, after: int, extent: int, stride: int) -> _AxisTiling:
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
    return _AxisTiling(out_chunks, (*(stride * c for c in out_chunks[:-1]), last), depth)


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


def _extend(x: da.Array, padding: tuple[int, int, int, int], boundary: str, cval: float) -> da.Array:
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
        index = source_indices(size, before, after, boundary, torch.device("cpu")).numpy()
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


# --------------------------------------------------------------------------------------------- per-chunk work


_threads_lock = threading.Lock()
_threads_users = 0
_threads_before = 0


@contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    """Run the body with ``threads`` torch threads (numba follows: the core keeps the two equal).

    Torch's setting is per calling thread in OpenMP builds (each worker thread must set it) and process-wide in
    others, so every task sets it in its own thread, and the first task in records the process's value, which the
    last task out restores.
    """
    global _threads_users, _threads_before
    with _threads_lock:
        if _threads_users == 0:
            _threads_before = torch.get_num_threads()
        _threads_users += 1
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users -= 1
            if _threads_users == 0:
                torch.set_num_threads(_threads_before)


def _filter_block(block: np.ndarray, kernel: np.ndarray, algo: str, threads: int) -> np.ndarray:
    with _torch_threads(threads):
        return np.asarray(functional.filter2d(block, kernel, mode="valid", algo=algo))


def _conv_block(
    block: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    stride: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
    algo: str,
    threads: int,
) -> np.ndarray:
    with _torch_threads(threads):
        return np.asarray(functional.conv2d(block, weight, bias, stride, 0, dilation, groups, algo=algo))


def _filter_window_block(
    placeholder: np.ndarray,
    window: _Window,
    target: zarr.Array[Any],
    kernel: np.ndarray,
    algo: str,
    threads: int,
    block_id: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Read the input window of ``target``'s chunk ``block_id``, filter it and write the chunk."""
    assert block_id is not None  # map_blocks always passes it to a function that declares it
    region = tuple(
        slice(i * chunk, min((i + 1) * chunk, size))
        for i, chunk, size in zip(block_id, target.chunks, target.shape, strict=True)
    )
    with _torch_threads(threads):
        target[region] = np.asarray(functional.filter2d(window.read(region), kernel, mode="valid", algo=algo))
    return np.ones((1,) * placeholder.ndim, bool)


def _write_block(block: np.ndarray, target: zarr.Array[Any], block_info: dict[Any, Any] | None = None) -> np.ndarray:
    assert block_info is not None  # map_blocks always passes it to a function that declares it
    target[tuple(slice(start, stop) for start, stop in block_info[0]["array-location"])] = block
    return np.ones((1,) * block.ndim, bool)


def _compute_with_progress(written: da.Array, progress: Progress | None) -> None:
    """Compute ``written`` (one task per stored chunk) on the current scheduler, reporting each finished chunk."""
    total = int(np.prod(written.numblocks))
    client = getattr(get_scheduler(), "__self__", None)
    if client is not None and hasattr(client, "compute"):  # a distributed.Client is the default scheduler
        from distributed import as_completed

        futures = client.compute(written.to_delayed().ravel().tolist())
        for done, _ in enumerate(as_completed(futures), start=1):
            if progress is not None:
                progress(done, total)
        client.gather(futures)  # re-raises a failed chunk's error
        return
    done = 0

    def count(key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        nonlocal done
        if isinstance(key, tuple) and key[0] == written.name and progress is not None:
            done += 1
            progress(done, total)

    with Callback(posttask=count):
        compute(written)


# --------------------------------------------------------------------------------------------- argument checks


def _check_dask_array(value: object, name: str, layout: str, ndims: Sequence[int]) -> None:
    if not isinstance(value, da.Array):
        raise TypeError(
            f"{name} must be a dask.array.Array, got {type(value).__name__}; wrap it with "
            f"dask.array.from_array({name}, chunks=...) or call xcorr.{'conv2d' if name == 'input' else 'filter2d'}"
        )
    if value.ndim not in ndims:
        raise ValueError(f"{name} must be {layout}, got {value.ndim}-D with shape {value.shape}")
    if any(np.isnan(size) for size in value.shape):
        raise ValueError(f"{name} has unknown chunk sizes; call {name}.compute_chunk_sizes() first")


def _host_array(value: ArrayLike) -> np.ndarray:
    """A small argument (kernel, weight, bias) as a NumPy array to ship to every task."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return (value.float() if value.dtype == torch.bfloat16 else value).numpy()
    return np.asarray(value)


def _check_algo(algo: str) -> None:
    if algo != "auto":
        get_algorithm(algo)


def _check_threads(threads: object) -> None:
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads_per_task must be a positive int, got {threads!r}")


def _read_chunks(stored: Sequence[int], shape: Sequence[int], samples_last: bool, side: int | None) -> tuple[int, ...]:
    """Stored chunks with spatial ones of ``side``, or by default grown to whole multiples of themselves of at least
    ``MIN_READ_CHUNK``."""
    if side is not None and (isinstance(side, bool) or side < 1):
        raise ValueError(f"chunks must be a positive int (a side in pixels) or Dask chunks, got {side!r}")
    spatial = range(len(shape) - 3, len(shape) - 1) if samples_last else range(len(shape) - 2, len(shape))
    chunks = list(stored)
    for axis in spatial:
        chunks[axis] = min(shape[axis], side or -(-MIN_READ_CHUNK // stored[axis]) * stored[axis])
    return tuple(chunks)
