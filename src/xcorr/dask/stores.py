"""``open_array`` and ``filter_to_zarr``: stored images (Zarr arrays, TIFF files) read lazily, and filtered into a
new Zarr array by independent tasks, each reading its output chunk's window straight from the store
(:mod:`xcorr.dask.windows`), filtering it and writing the chunk (:mod:`xcorr.dask.tasks`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import zarr
from dask.base import compute, get_scheduler, tokenize
from dask.callbacks import Callback

from xcorr import arguments
from xcorr.arguments import ArrayLike
from xcorr.dask.arrays import filter2d
from xcorr.dask.checks import host_array
from xcorr.dask.tasks import filter_window_block, write_block
from xcorr.dask.windows import StoredPlanes, Window
from xcorr.outputs import replace_refusal

__all__ = ["Progress", "filter_to_zarr", "open_array"]

Progress = Callable[[int, int], None]
"""``progress(done, total)``: called after each output chunk is written, with the chunk counts."""


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
        >>> import tempfile, numpy as np, zarr
        >>> folder = tempfile.TemporaryDirectory()
        >>> slide = f"{folder.name}/slide.zarr"
        >>> _ = zarr.create_array(slide, data=np.arange(64.0).reshape(8, 8), chunks=(2, 8))
        >>> open_array(slide).chunks  # the stored (2, 8) chunks, enlarged (here to the whole image)
        ((8,), (8,))
        >>> image = open_array(slide, chunks=4)
        >>> image.chunks
        ((4, 4), (4, 4))
        >>> smooth = filter2d(image, np.ones((3, 3)) / 9, boundary="reflect")
        >>> round(float(smooth[0, 0].compute()), 6)  # mean of rows [1, 0, 1] x columns [1, 0, 1]
        6.0
        >>> folder.cleanup()
    """
    planes = StoredPlanes.open(path)
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
        overwrite: replace an existing ``target`` Zarr store; otherwise an existing one is an error. A directory
            that is not a Zarr store is never replaced (:mod:`xcorr.outputs`).
        compressors: as ``zarr.create_array`` (``"auto"``: Zarr's default; ``None``: raw chunks, fastest for
            noise-like float data that does not compress).
        progress: ``progress(done, total)`` after each chunk written (e.g. a progress bar's update).

    Returns:
        The written ``zarr.Array`` (..., Ho, Wo), equal to :func:`xcorr.filter2d` on the whole source.

    Example:
        >>> import tempfile, numpy as np, xcorr, zarr
        >>> folder = tempfile.TemporaryDirectory()
        >>> slide, edges = f"{folder.name}/slide.zarr", f"{folder.name}/edges.zarr"
        >>> image = np.random.default_rng(0).random((40, 30))
        >>> _ = zarr.create_array(slide, data=image, chunks=(16, 16))
        >>> out = filter_to_zarr(slide, edges, xcorr.kernels.sobel_x(), boundary="edge", chunks=16)
        >>> out.shape, out.chunks
        ((40, 30), (16, 16))
        >>> bool(np.allclose(out[:], xcorr.filter2d(image, xcorr.kernels.sobel_x(), boundary="edge")))
        True
        >>> folder.cleanup()
    """
    if isinstance(source, da.Array):
        planes, image = None, source
    else:
        planes = StoredPlanes.open(source)
        image = planes.lazy(chunks)
    result = filter2d(  # validates every argument; its graph is used for Dask array sources only
        image, kernel, mode=mode, boundary=boundary, cval=cval, algo=algo, threads_per_task=threads_per_task
    )
    cval = arguments.check_cval(cval)
    chunk_shape = tuple(max(1, min(c, s)) for c, s in zip(image.chunksize, result.shape, strict=True))
    refusal = replace_refusal(Path(target), store=True)
    if refusal is not None:
        raise ValueError(f"target {target} {refusal}")
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
            write_block,
            target=stored,
            chunks=tuple((1,) * len(c) for c in result.chunks),
            dtype=bool,
            meta=np.empty((0,) * result.ndim, bool),
            name="xcorr-write-" + tokenize(result, str(target)),
        )
    else:
        weights = host_array(kernel)
        padding = arguments.mode_padding(mode, weights.shape)
        window = Window(planes, weights.shape, padding, boundary, cval, np.dtype(result.dtype))
        grid = tuple(-(-size // chunk) for size, chunk in zip(result.shape, chunk_shape, strict=True))
        written = da.zeros(grid, chunks=1, dtype=bool).map_blocks(
            filter_window_block,
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
