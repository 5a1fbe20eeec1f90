"""Reading a stored array (Zarr, or a TIFF's Zarr view) as (..., H, W) planes, and the padded window of samples
that one output chunk of a correlation reads, boundary included (by index mapping, as ``numpy.pad``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import zarr

from xcorr.padding import source_indices

MIN_READ_CHUNK = 1024
"""``open_array`` enlarges stored chunks (TIFF strips, small Zarr chunks) to at least this many pixels a side."""


@dataclass(frozen=True)
class StoredPlanes:
    """A stored array seen as (..., H, W) planes: a Zarr array, or a TIFF's Zarr view, whose samples-last
    colour images (..., H, W, S) are seen as (S, ..., H, W). Pickled as its path (reopened where it lands: a TIFF's
    open file cannot travel to a worker process)."""

    path: Path
    array: zarr.Array[Any]
    samples_last: bool

    def __reduce__(self) -> tuple[Callable[[Path], StoredPlanes], tuple[Path]]:
        return StoredPlanes.open, (self.path,)

    @classmethod
    def open(cls, path: str | Path) -> StoredPlanes:
        path = Path(path)
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                samples_last = tif.series[0].axes.endswith("S")
                count = len(tif.series)
            if count > 1:  # reading series 0 alone would drop the others silently
                raise ValueError(
                    f"{path} holds {count} image series (pages written one by one, or of several sizes); the "
                    "out-of-core route reads one: filter it in memory to a .tif, or split it into one file per series"
                )
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
        """The planes as a Dask array; by default in the stored chunks, enlarged (see ``xcorr.dask.open_array``)."""
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
class Window:
    """Reads, from the store, the samples of the padded planes that an output region of the correlation reads."""

    planes: StoredPlanes
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
        return source_indices(size, before, after, self.boundary)[start:stop]


def _runs(index: np.ndarray) -> tuple[list[slice], np.ndarray]:
    """Slices covering the distinct entries >= 0 of ``index``, ascending, and where each entry lies in their
    concatenation (-1 where ``index`` is -1)."""
    distinct = np.unique(index[index >= 0])
    breaks = np.flatnonzero(np.diff(distinct) != 1) + 1
    slices = [slice(int(run[0]), int(run[-1]) + 1) for run in np.split(distinct, breaks)]
    return slices, np.where(index >= 0, np.searchsorted(distinct, index), -1)


def _is_identity(positions: np.ndarray) -> bool:
    return bool(np.array_equal(positions, np.arange(len(positions))))


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
