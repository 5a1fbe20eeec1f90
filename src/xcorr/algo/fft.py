"""Overlap-save FFT correlation: cache-sized tiles, real-to-complex transforms, spectra reused across the batch.

The padded input is cut into overlapping tiles of a fast FFT size ``(Fh, Fw)`` (2^a, 3 * 2^a or 5 * 2^a); each
tile's spectrum is multiplied by the spectrum of the flipped kernel, summed over the input channels of its
group (an elementwise product for depthwise layers, a batched matrix product per frequency for dense ones) and
transformed back; the last ``Fh - eh + 1`` rows and ``Fw - ew + 1`` columns of each inverse are valid
outputs. Kernel spectra are computed once per call and shared by every image and tile. Tiles are processed in
chunks of bounded size, so no padded copy of the whole input (nor of its spectrum) is ever made.

A kernel as large as the input (the weight-gradient product, whose "kernel" is the whole output gradient) gets
a single transform of the padded input's size instead of tiles. Dilation inserts zeros into the kernel (exact);
stride computes the stride-1 tile and keeps every ``stride``-th row and column. float16 and bfloat16 inputs are
computed in float32 and rounded back; float32 uses complex64 and float64 complex128. The code uses only
``torch.fft`` and tensor ops, so it runs on the device of ``x`` (CPU here; the CUDA path is untested).

Accuracy: FFT rounding error is absolute, about ``eps * max|x| * sum|w|`` per output, not relative to each output
as for a direct sum: outputs much smaller than that bound (say next to large ones) lose digits
(scipy/scipy#22390, pytorch/pytorch#52983). Hence ``exact=False`` and ``precision="exact"`` excludes it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import numba
import numpy as np
import torch
from torch import Tensor

from xcorr import costs
from xcorr.algo.registry import Algorithm, register
from xcorr.algo.saturation import write_saturated
from xcorr.padding import source_indices
from xcorr.problem import Pair, Problem

# Working set of one chunk of tiles (tile pixels, their spectra, the products and inverse transforms). 8 MiB ran
# as fast as 16 (2048x2048 with 31x31 and 63x63 kernels, a depthwise 31x31 layer) with a lower peak.
CHUNK_BYTES = 8 * 2**20
# Kernel spectra held at once; larger weights are transformed one slice of groups or output channels at a time.
# Transforming a slice briefly holds about three times this much. 4 MiB, not 32: the weight-gradient product of a
# depthwise 64-channel 31x31 layer peaked at 136 MiB with 32 and runs as fast with 4; only dense layers (whose
# input is read once per slice of output channels) slow down, and the planner gives those to the vendor kernel.
KERNEL_SPECTRA_BYTES = 4 * 2**20


@dataclass(frozen=True)
class Tiling:
    """How the output is cut into overlap-save tiles.

    Attributes:
        fft_shape: (Fh, Fw), transform size of every tile; each is 1, ``2**a``, ``3 * 2**a`` or ``5 * 2**a``.
        step: input rows and columns between neighbouring tiles (``tile_out * stride``).
        tile_out: output rows and columns one tile yields (``step // stride``).
        grid: number of tiles along rows and columns.
    """

    fft_shape: Pair
    step: Pair
    tile_out: Pair
    grid: Pair


Extension = tuple[np.ndarray, np.ndarray]
"""The input row and column each padded row and column reads (-1: a zero), as
:func:`xcorr.padding.source_indices` gives them for a boundary."""


def run_extended(
    x: Tensor, w: Tensor, problem: Problem, boundary: str, samples: int = 1, result_dtype: torch.dtype | None = None
) -> Tensor:
    """:func:`run` with ``problem.padding`` extending ``x`` by ``boundary`` (a ``numpy.pad`` mode; ``"constant"``
    is zeros): the tiles at the border read reflected, wrapped or repeated rows and columns where they would read
    zeros, the inner tiles are unchanged, so no padded copy is made. ``samples``: the rows hold pixels of that many
    interleaved values (channels last), as :func:`xcorr.padding.source_indices`. ``x`` may hold 8- or 16-bit
    samples, read into the float tiles as they are; ``result_dtype``: an integer dtype to return instead, the
    result rounded half to even and saturated (:func:`~xcorr.algo.saturation.write_saturated`).

    Example:
        >>> import numpy as np
        >>> x, w = torch.randn(1, 1, 40, 50, dtype=torch.float64), torch.randn(1, 1, 9, 9, dtype=torch.float64)
        >>> problem = Problem((1, 1, 40, 50), (1, 1, 9, 9), (1, 1), (4, 4, 4, 4), dtype=torch.float64)
        >>> y = run_extended(x, w, problem, "wrap")
        >>> padded = torch.from_numpy(np.pad(x.numpy(), ((0, 0), (0, 0), (4, 4), (4, 4)), mode="wrap"))
        >>> torch.allclose(y, torch.nn.functional.conv2d(padded, w))
        True
    """
    _, _, h, width = problem.input_shape
    top, bottom, left, right = problem.padding
    rows = source_indices(h, top, bottom, boundary)
    cols = source_indices(width, left, right, boundary, samples)
    y = run(x, w, problem, (rows, cols))
    if result_dtype is None:
        return y
    rounded = torch.empty(y.shape, dtype=result_dtype)
    write_saturated(y, rounded)
    return rounded


def run(x: Tensor, w: Tensor, problem: Problem, extension: Extension | None = None) -> Tensor:
    """Correlate ``x`` (N, C, H, W) with ``w`` (O, C // groups, kh, kw) by overlap-save FFT tiles.

    Returns ``y`` (N, O, Ho, Wo) of ``x``'s dtype and device (``problem.dtype`` for 8/16-bit samples); see
    :class:`~xcorr.problem.Problem` for the geometry. ``extension``: the padding reads these rows and columns
    instead of zeros (:func:`run_extended`).

    Example:
        >>> x, w = torch.randn(1, 1, 64, 64, dtype=torch.float64), torch.randn(1, 1, 9, 9, dtype=torch.float64)
        >>> y = run(x, w, Problem(tuple(x.shape), tuple(w.shape), dtype=torch.float64))
        >>> torch.allclose(y, torch.nn.functional.conv2d(x, w))
        True
    """
    n = x.shape[0]
    o, cg = w.shape[:2]
    groups = problem.groups
    out_per_group = o // groups
    y = x.new_empty(problem.output_shape, dtype=problem.dtype)
    if y.numel() == 0:
        return y
    if cg == 0:
        return y.zero_()
    real = torch.float64 if problem.dtype == torch.float64 else torch.float32
    tiling = plan_tiling(problem)
    weights = w.to(real).reshape(groups, out_per_group, *w.shape[1:])
    for g0, gc, o0, oc in _weight_chunks(problem, tiling, real):
        spectra = _kernel_spectra(weights[g0 : g0 + gc, o0 : o0 + oc], tiling.fft_shape, problem.dilation)
        x_chunk = x[:, g0 * cg : (g0 + gc) * cg]
        first_out = g0 * out_per_group + o0
        y_chunk = y[:, first_out : first_out + gc * oc]
        for chunk in _tile_chunks(n, gc * cg, gc * oc, tiling, real):
            pairable = [axis for axis in range(3) if len(chunk[axis]) > 1]
            if not pairable:
                _correlate_tiles(x_chunk, spectra, y_chunk, chunk, problem, tiling, extension)
            else:
                axis = max(pairable, key=lambda a: (len(chunk[a]) % 2 == 0, len(chunk[a])))
                _correlate_tile_pairs(x_chunk, spectra, y_chunk, chunk, axis, problem, tiling, extension)
    return y


Chunk = tuple[range, range, range]
"""(images, tile rows, tile columns) processed together."""


def _correlate_tiles(
    x: Tensor, spectra: Tensor, y: Tensor, chunk: Chunk, problem: Problem, tiling: Tiling, extension: Extension | None
) -> None:
    """One chunk by real-to-complex transforms (used when the chunk holds a single tile)."""
    images, rows, cols = chunk
    fh, fw = tiling.fft_shape
    tiles = x.new_empty((len(images), x.shape[1], len(rows), len(cols), fh, fw), dtype=spectra.real.dtype)
    _gather_tiles(x, tiles, chunk, problem, tiling, extension)
    product = _contract(torch.fft.rfft2(tiles), spectra[..., : fw // 2 + 1])
    (eh, ew), (step_h, step_w), (sh, sw) = problem.kernel_extent, tiling.step, problem.stride
    # The column transform first, so that the complex-to-real row transform only runs on the rows kept.
    columns = torch.fft.ifft(product, dim=-2, norm="forward")[..., eh - 1 : eh - 1 + step_h : sh, :]
    outputs = torch.fft.irfft(columns, n=fw, dim=-1, norm="forward")[..., ew - 1 : ew - 1 + step_w : sw]
    _scatter_tiles(outputs, y, chunk, tiling)


def _correlate_tile_pairs(
    x: Tensor,
    spectra: Tensor,
    y: Tensor,
    chunk: Chunk,
    axis: int,
    problem: Problem,
    tiling: Tiling,
    extension: Extension | None,
) -> None:
    """One chunk by complex transforms of tile pairs: the first half of ``chunk[axis]`` in the real parts, the
    second half in the imaginary parts.

    The kernel spectra are spectra of real kernels, so the inverse transform of each product holds the first
    tile's output in its real part and the second's in its imaginary part. A complex transform costs about as
    much as two real-to-complex ones, and torch's complex inverse avoids the slow path of its real inverse.
    """
    fh, fw = tiling.fft_shape
    half = (len(chunk[axis]) + 1) // 2
    first, second = (_split(chunk, axis, part, half) for part in (0, 1))
    shape = [len(chunk[0]), x.shape[1], len(chunk[1]), len(chunk[2]), fh, fw]
    dim = _TILE_DIMS[axis]
    shape[dim] = 2 * half
    tiles = x.new_empty(shape, dtype=spectra.real.dtype)
    _gather_tiles(x, tiles.narrow(dim, 0, len(chunk[axis])), chunk, problem, tiling, extension)
    if len(chunk[axis]) < 2 * half:
        tiles.narrow(dim, 2 * half - 1, 1).zero_()
    packed = torch.complex(tiles.narrow(dim, 0, half), tiles.narrow(dim, half, half))
    product = _contract(torch.fft.fft2(packed), spectra)
    (eh, ew), (step_h, step_w), (sh, sw) = problem.kernel_extent, tiling.step, problem.stride
    spatial = torch.fft.ifft2(product, norm="forward")
    outputs = spatial[..., eh - 1 : eh - 1 + step_h : sh, ew - 1 : ew - 1 + step_w : sw]
    _scatter_tiles(outputs.real, y, first, tiling)
    _scatter_tiles(outputs.imag.narrow(_TILE_DIMS[axis], 0, len(second[axis])), y, second, tiling)


# Tensor dimension of images, tile rows and tile columns in a (N, C, R, C, Fh, Fw) block of tiles.
_TILE_DIMS = (0, 2, 3)


def _split(chunk: Chunk, axis: int, part: int, half: int) -> Chunk:
    """The first (part 0) or second (part 1) half of ``chunk`` along ``axis``."""
    whole = chunk[axis]
    pieces = list(chunk)
    pieces[axis] = range(whole.start, whole.start + half) if part == 0 else range(whole.start + half, whole.stop)
    return pieces[0], pieces[1], pieces[2]


def _weight_chunks(problem: Problem, tiling: Tiling, real: torch.dtype) -> Iterator[tuple[int, int, int, int]]:
    """(first group, groups, first output channel in the group, output channels) whose spectra fit the budget."""
    o, cg, _, _ = problem.weight_shape
    groups = problem.groups
    out_per_group = o // groups
    fh, fw = tiling.fft_shape
    per_output_channel = cg * fh * fw * 2 * _itemsize(real)
    outputs_per_chunk = max(1, KERNEL_SPECTRA_BYTES // per_output_channel)
    if outputs_per_chunk >= out_per_group:
        groups_per_chunk = outputs_per_chunk // out_per_group
        for g0 in range(0, groups, groups_per_chunk):
            yield g0, min(groups_per_chunk, groups - g0), 0, out_per_group
    else:
        for g0 in range(groups):
            for o0 in range(0, out_per_group, outputs_per_chunk):
                yield g0, 1, o0, min(outputs_per_chunk, out_per_group - o0)


def _kernel_spectra(w: Tensor, fft_shape: Pair, dilation: Pair) -> Tensor:
    """Spectra (G, O, Cg, Fh, Fw) of ``w`` (G, O, Cg, kh, kw), flipped and dilated by zero insertion.

    Flipping turns the correlation into a convolution, so no conjugation pass is needed; its valid outputs then
    start at row ``eh - 1`` and column ``ew - 1`` of each tile. The spectra are scaled by ``1 / (Fh * Fw)``
    (``norm="forward"``), the inverse transform's factor, so the tiles' inverse transforms need no scaling pass.
    Their first ``Fw // 2 + 1`` columns are the real-to-complex half spectra.
    """
    (kh, kw), (dh, dw) = w.shape[-2:], dilation
    padded = w.new_zeros((*w.shape[:-2], *fft_shape))
    padded[..., : dh * (kh - 1) + 1 : dh, : dw * (kw - 1) + 1 : dw] = w.flip(-2, -1)
    spectra: Tensor = torch.fft.fft2(padded, norm="forward")
    return spectra


def _tile_chunks(n: int, in_channels: int, out_channels: int, tiling: Tiling, real: torch.dtype) -> Iterator[Chunk]:
    """(images, tile rows, tile columns) blocks whose working set fits :data:`CHUNK_BYTES`."""
    fh, fw = tiling.fft_shape
    rows_total, cols_total = tiling.grid
    per_tile = (2 * in_channels + 3 * out_channels) * fh * fw * _itemsize(real)
    tiles = max(1, CHUNK_BYTES // per_tile)
    cols = min(cols_total, tiles)
    rows = min(rows_total, max(1, tiles // cols))
    images = min(n, max(1, tiles // (rows * cols)))
    for n0 in range(0, n, images):
        for r0 in range(0, rows_total, rows):
            for c0 in range(0, cols_total, cols):
                yield (
                    range(n0, min(n0 + images, n)),
                    range(r0, min(r0 + rows, rows_total)),
                    range(c0, min(c0 + cols, cols_total)),
                )


def _gather_tiles(
    x: Tensor, tiles: Tensor, chunk: Chunk, problem: Problem, tiling: Tiling, extension: Extension | None
) -> None:
    """Fill ``tiles`` (N, C, R, C, Fh, Fw) with the overlapping tiles of ``chunk`` of the padded ``x``.

    Tiles wholly inside ``x`` are copied as one strided window view per block. Where a tile overlaps the padding,
    that part is zeros, or with an ``extension`` the rows and columns it names, gathered for those few rows and
    columns only (:func:`_fill_extended`). One pass over the input, no padded copy.
    """
    images, rows, cols = chunk
    x = x[images.start : images.stop]
    x_values = None if extension is None else x.numpy()  # the CPU, untracked call that reads a boundary
    h, w = x.shape[-2:]
    top, _, left, _ = problem.padding
    (fh, fw), (step_h, step_w) = tiling.fft_shape, tiling.step
    row_parts = _axis_parts(rows, step_h, fh, top, h)
    col_parts = _axis_parts(cols, step_w, fw, left, w)
    if extension is None:
        for first, count, _, offset, length in row_parts:
            tiles[:, :, first : first + count, :, : max(offset, 0)] = 0
            tiles[:, :, first : first + count, :, max(offset + length, 0) :] = 0
        for first, count, _, offset, length in col_parts:
            tiles[:, :, :, first : first + count, :, : max(offset, 0)] = 0
            tiles[:, :, :, first : first + count, :, max(offset + length, 0) :] = 0
    for r0, rc, rsrc, rdst, rlen in row_parts:
        for c0, cc, csrc, cdst, clen in col_parts:
            block = tiles[:, :, r0 : r0 + rc, c0 : c0 + cc]
            if rlen > 0 and clen > 0:
                source = x[:, :, rsrc : rsrc + (rc - 1) * step_h + rlen, csrc : csrc + (cc - 1) * step_w + clen]
                windows = source.unfold(2, rlen, step_h).unfold(3, clen, step_w)
                block[..., rdst : rdst + rlen, cdst : cdst + clen] = windows
            if extension is None:
                continue
            row_first, col_first = (rows.start + r0) * step_h, (cols.start + c0) * step_w
            block_values, row_source, col_source = block.numpy(), *extension
            for lo, hi in _margins(rdst, rlen, fh):
                tile_rows = _tile_sources(row_source, row_first + lo, rc, step_h, hi - lo)
                tile_cols = _tile_sources(col_source, col_first, cc, step_w, fw)
                _fill_extended(block_values[..., lo:hi, :], x_values, tile_rows, tile_cols)
            for lo, hi in _margins(cdst, clen, fw):
                tile_rows = _tile_sources(row_source, row_first, rc, step_h, fh)
                tile_cols = _tile_sources(col_source, col_first + lo, cc, step_w, hi - lo)
                _fill_extended(block_values[..., :, lo:hi], x_values, tile_rows, tile_cols)


def _margins(offset: int, length: int, size: int) -> list[tuple[int, int]]:
    """The stretches of a tile's ``size`` positions outside the input, which covers ``[offset, offset + length)``."""
    if length <= 0:
        return [(0, size)]
    return [(lo, hi) for lo, hi in ((0, offset), (offset + length, size)) if lo < hi]


def _tile_sources(source: np.ndarray, start: int, tiles: int, step: int, size: int) -> np.ndarray:
    """(tiles, size): the input position (``source``, -1: a zero) each of ``tiles`` tiles reads at its ``size``
    positions from padded position ``start`` on, tile ``j`` ``j * step`` further; positions past the padded
    extent (read only by outputs a tile discards) read zeros."""
    positions = start + step * np.arange(tiles)[:, None] + np.arange(size)
    return np.where(positions < len(source), source[np.minimum(positions, len(source) - 1)], -1)


@numba.njit(cache=True, nogil=True)
def _fill_extended(block, x, rows, cols):  # type: ignore[no-untyped-def]
    """``block[n, c, i, j, u, v] = x[n, c, rows[i, u], cols[j, v]]``, zero where either index is -1: the part of
    a block of tiles (N, C, R, C', U, V) that reads the padding, from ``x`` (N, C, H, W) as it is (float, or 8-
    and 16-bit samples)."""
    images, channels, tile_rows, tile_cols, height, width = block.shape
    for n in range(images):
        for c in range(channels):
            for i in range(tile_rows):
                for j in range(tile_cols):
                    for u in range(height):
                        q = rows[i, u]
                        for v in range(width):
                            p = cols[j, v]
                            block[n, c, i, j, u, v] = x[n, c, q, p] if q >= 0 and p >= 0 else 0


def _axis_parts(tiles: range, step: int, size: int, pad: int, extent: int) -> list[tuple[int, int, int, int, int]]:
    """Split ``tiles`` along one axis into runs that read the input alike.

    Tile ``j`` reads padded positions ``[j * step, j * step + size)``, that is input positions shifted by ``pad``.
    Each run is (first tile relative to ``tiles.start``, tiles, first input position, first position inside
    the tile, length): the tiles wholly inside the input form one run, every other tile is a run of its own
    with its clipped window (length 0 or less when it reads padding only).
    """
    inside = range(max(tiles.start, -(-pad // step)), min(tiles.stop, (extent + pad - size) // step + 1))
    parts = []
    if len(inside):
        parts.append((inside.start - tiles.start, len(inside), inside.start * step - pad, 0, size))
    for j in tiles:
        if j in inside:
            continue
        begin = j * step - pad
        lo, hi = max(begin, 0), min(begin + size, extent)
        parts.append((j - tiles.start, 1, lo, lo - begin, hi - lo))
    return parts


def _contract(spectrum: Tensor, spectra: Tensor) -> Tensor:
    """Sum over input channels of tile spectra times kernel spectra, per group and frequency.

    ``spectrum`` (N, G * Cg, R, C, Fh, F) and ``spectra`` (G, O, Cg, Fh, F) give (N, G * O, R, C, Fh, F).
    Depthwise layers need a broadcast product only; a single output channel per group (the weight-gradient
    product) a product and a sum; otherwise a batched matrix product per group and frequency.
    """
    n, _, rows, cols, fh, f = spectrum.shape
    groups, out, cg = spectra.shape[:3]
    tiles = spectrum.view(n, groups, cg, rows * cols, fh, f)
    if cg == 1:
        product = tiles * spectra.view(groups, out, 1, fh, f)
    elif out == 1:
        product = (tiles * spectra.view(groups, cg, 1, fh, f)).sum(2, keepdim=True)
    else:
        product = torch.einsum("ngctf,gocf->ngotf", tiles.flatten(-2), spectra.flatten(-2))
    return product.reshape(n, groups * out, rows, cols, fh, f)


def _scatter_tiles(tiles: Tensor, y: Tensor, chunk: Chunk, tiling: Tiling) -> None:
    """Write ``tiles`` (N, O, R, C, th, tw) of ``chunk`` into their place in ``y`` (all N, O, Ho, Wo)."""
    images, rows, cols = chunk
    th, tw = tiling.tile_out
    ho, wo = y.shape[-2:]
    height = min(rows.stop * th, ho) - rows.start * th
    width = min(cols.stop * tw, wo) - cols.start * tw
    region = y[images.start : images.stop, :, rows.start * th :, cols.start * tw :]
    for i0, count_r, size_r in _parts(height, th):
        for j0, count_c, size_c in _parts(width, tw):
            target = region[:, :, i0 * th : i0 * th + count_r * size_r, j0 * tw : j0 * tw + count_c * size_c]
            source = tiles[:, :, i0 : i0 + count_r, j0 : j0 + count_c, :size_r, :size_c]
            target.unflatten(2, (count_r, size_r)).unflatten(4, (count_c, size_c)).copy_(source.transpose(3, 4))


def _parts(extent: int, tile: int) -> list[tuple[int, int, int]]:
    """(first tile, tiles, size of each) for the full tiles and the cropped last one covering ``extent``."""
    full, rest = divmod(extent, tile)
    parts = [(0, full, tile)] if full else []
    if rest:
        parts.append((full, 1, rest))
    return parts


def plan_tiling(problem: Problem) -> Tiling:
    """The cheapest tiling of ``problem`` under the cost model (one tile when the kernel is as large as the input).

    Example:
        >>> plan_tiling(Problem((1, 1, 94, 94), (1, 1, 64, 64))).grid
        (1, 1)
    """
    return _plan_tiling(_Shape.of(problem))


@dataclass(frozen=True)
class _Shape:
    """The integers the tiling and the cost depend on."""

    n: int
    c: int
    o: int
    cg: int
    out: Pair
    extent: Pair
    stride: Pair
    item: int

    @staticmethod
    def of(problem: Problem) -> _Shape:
        n, o, ho, wo = problem.output_shape
        return _Shape(
            n=n,
            c=problem.input_shape[1],
            o=o,
            cg=problem.weight_shape[1],
            out=(max(ho, 1), max(wo, 1)),
            extent=problem.kernel_extent,
            stride=problem.stride,
            item=8 if problem.dtype == torch.float64 else 4,
        )


@lru_cache(maxsize=512)
def _plan_tiling(shape: _Shape) -> Tiling:
    rows, cols = (_candidates(shape.out[i], shape.extent[i], shape.stride[i]) for i in range(2))
    # Tiles stay cache-sized, unless the kernel is so large that such tiles would be mostly overlap.
    max_points = max(costs.FFT_MAX_TILE_POINTS, 16 * shape.extent[0] * shape.extent[1], rows[0] * cols[0])
    tilings = [_tiling(shape, (fh, fw)) for fh in rows for fw in cols if fh * fw <= max_points]
    return min(tilings, key=lambda tiling: _estimate(shape, tiling))


def _candidates(out: int, extent: int, stride: int) -> list[int]:
    """Fast transform lengths along one axis, from the smallest that yields one output to one covering all."""
    smallest = _next_fast_len(extent)
    largest = _next_fast_len((out - 1) * stride + extent)
    return [f for f in _fast_lengths(largest.bit_length()) if smallest <= f <= largest]


def _tiling(shape: _Shape, fft_shape: Pair) -> Tiling:
    (fh, fw), (eh, ew), (sh, sw) = fft_shape, shape.extent, shape.stride
    tile_out = ((fh - eh) // sh + 1, (fw - ew) // sw + 1)
    grid = (-(-shape.out[0] // tile_out[0]), -(-shape.out[1] // tile_out[1]))
    return Tiling(fft_shape=fft_shape, step=(tile_out[0] * sh, tile_out[1] * sw), tile_out=tile_out, grid=grid)


def _estimate(shape: _Shape, tiling: Tiling) -> float:
    """Seconds for ``shape`` with ``tiling``, from the work counts of :func:`work` and the constants in costs."""
    counts = work(shape, tiling)
    seconds = (
        costs.FFT_PER_POINT_LOG2 * counts["point_log2"]
        + costs.FFT_PER_TRANSFORM * counts["transform"]
        + costs.FFT_PER_SPECTRUM_MAC * counts["spectrum_mac"]
        + costs.FFT_PER_TILE_POINT * counts["tile_point"]
        + costs.FFT_PER_CHUNK * counts["chunk"]
    )
    return seconds * shape.item / 4


def work(shape: _Shape, tiling: Tiling) -> dict[str, float]:
    """Work counts of one call, in real-tile units (a complex transform of a tile pair counts as two tiles).

    Keys: ``point_log2`` (transform points times log2 of the transform size), ``transform`` (transforms),
    ``spectrum_mac`` (complex multiply-adds of the channel contraction), ``tile_point`` (points gathered and
    scattered) and ``chunk`` (chunks); ``costs.FFT_PER_<KEY>`` is the price of one unit of each.
    """
    fh, fw = tiling.fft_shape
    points = fh * fw
    tiles = tiling.grid[0] * tiling.grid[1]
    groups = shape.c // shape.cg
    spectra_bytes = shape.o * shape.cg * points * 2 * shape.item
    input_passes = max(1, -(-spectra_bytes // (KERNEL_SPECTRA_BYTES * groups)))
    input_tiles = shape.n * shape.c * tiles * input_passes
    output_tiles = shape.n * shape.o * tiles
    transforms = input_tiles + output_tiles + 2 * shape.o * shape.cg
    per_tile_bytes = (2 * shape.c + 3 * shape.o) * points * shape.item
    return {
        "point_log2": transforms * points * math.log2(points),
        "transform": transforms,
        "spectrum_mac": shape.n * tiles * shape.o * shape.cg * points / 2,
        "tile_point": (input_tiles + output_tiles) * points,
        "chunk": input_passes * -(-shape.n * tiles * per_tile_bytes // CHUNK_BYTES),
    }


def _next_fast_len(n: int) -> int:
    """Smallest length of :func:`_fast_lengths` that is at least ``n``."""
    return next(f for f in _fast_lengths(n.bit_length()) if f >= n)


@lru_cache(maxsize=64)
def _fast_lengths(bits: int) -> tuple[int, ...]:
    """1 and the lengths ``2**a``, ``3 * 2**a``, ``5 * 2**a`` (a >= 1) up to ``2 ** (bits + 1)``, sorted.

    Odd lengths are markedly slower for real transforms, and lengths with a factor 9, 25 or 27 run 1.5-2x
    slower per point than these in the FFT libraries measured (MKL through torch).
    """
    limit = 2 ** (bits + 1)
    return tuple(sorted({1} | {odd * 2**a for odd in (1, 3, 5) for a in range(1, bits + 2) if odd * 2**a <= limit}))


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def unsupported(problem: Problem) -> str | None:
    """Every problem is supported (half precision is computed in float32)."""
    return None


def cost(problem: Problem) -> float:
    """Estimated seconds: the cost model of the chosen tiling plus the fixed call overhead."""
    shape = _Shape.of(problem)
    return costs.CALL_OVERHEAD + _estimate(shape, _plan_tiling(shape))


ALGORITHM = register(
    Algorithm(
        name="fft",
        run=run,
        unsupported=unsupported,
        cost=cost,
        exact=False,
        summary="overlap-save FFT tiles (torch.fft, CPU or CUDA): large kernels; absolute error ~eps*max|x|*sum|w|",
        run_extended=run_extended,
    )
)
