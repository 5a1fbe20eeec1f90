"""xcorr.dask: lazy, chunked filter2d / conv2d equal the in-memory definition, on every chunking and scheduler.

References are independent of xcorr: ``numpy.pad`` + ``scipy.signal.correlate2d`` (float64) for ``filter2d``,
``torch.nn.functional.pad`` + ``torch.nn.functional.conv2d`` (float64) for ``conv2d``.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
import tifffile
import torch
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import correlate2d

import xcorr
import xcorr.dask as xd
from xcorr import functional

MODES = ("valid", "same", "full")
BOUNDARIES = ("constant", "reflect", "symmetric", "edge", "wrap")
TORCH_PADDING = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


def reference_filter(x: np.ndarray, k: np.ndarray, mode: str, boundary: str, cval: float) -> np.ndarray:
    """``numpy.pad`` in the boundary mode, then SciPy's valid correlation of every leading slice, in float64."""
    kh, kw = k.shape
    pads = {"valid": (0, 0, 0, 0), "same": ((kh - 1) // 2, kh // 2, (kw - 1) // 2, kw // 2)}
    top, bottom, left, right = pads.get(mode, (kh - 1, kh - 1, kw - 1, kw - 1))
    planes = x.reshape(-1, *x.shape[-2:]).astype(np.float64)
    out = []
    for plane in planes:
        widths = ((top, bottom), (left, right))
        padded = (
            np.pad(plane, widths, "constant", constant_values=cval)
            if boundary == "constant"
            else np.pad(plane, widths, boundary)
        )
        out.append(correlate2d(padded, k.astype(np.float64), mode="valid"))
    return np.stack(out).reshape(*x.shape[:-2], *out[0].shape)


def assert_chunks_describe_blocks(result: da.Array) -> np.ndarray:
    """Compute block by block: every block has the shape ``result.chunks`` promises; return the assembled array."""
    blocks = result.to_delayed()
    computed = np.empty(blocks.shape, dtype=object)
    for index, block in zip(np.ndindex(blocks.shape), dask.compute(*blocks.ravel(), scheduler="sync"), strict=True):
        expected = tuple(chunks[i] for chunks, i in zip(result.chunks, index, strict=True))
        assert block.shape == expected, f"block {index}: {block.shape} != chunks {expected}"
        assert block.dtype == result.dtype
        computed[index] = block
    return np.block(computed.tolist()) if computed.size else np.empty(result.shape, result.dtype)


CHUNKINGS = {
    "one chunk": lambda shape: shape,
    "uneven": lambda shape: (*shape[:-2], (5, 1, shape[-2] - 6), (7, shape[-1] - 7)),
    "smaller than kernel": lambda shape: (*shape[:-2], 2, 3),
}


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_filter2d_equals_in_memory_definition(chunking: str, mode: str, boundary: str) -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 17, 19)).astype(np.float32)
    k = rng.standard_normal((5, 4)).astype(np.float32)  # even width: asymmetric 'same' padding
    result = xd.filter2d(
        da.from_array(x, chunks=CHUNKINGS[chunking](x.shape)), k, mode=mode, boundary=boundary, cval=0.25
    )
    computed = assert_chunks_describe_blocks(result)
    np.testing.assert_allclose(computed, reference_filter(x, k, mode, boundary, 0.25), rtol=1e-4, atol=1e-4)


def test_same_mode_keeps_the_input_chunks() -> None:
    x = da.zeros((3, 40, 50), chunks=(2, (16, 16, 8), (25, 25)), dtype=np.float32)
    assert xd.filter2d(x, np.ones((5, 5)), boundary="wrap").chunks == x.chunks


def test_a_one_element_cval_array_is_its_value() -> None:
    x = np.arange(30.0).reshape(5, 6)
    result = xd.filter2d(da.from_array(x, chunks=3), np.ones((3, 3)), cval=np.array([2.5])).compute()
    np.testing.assert_allclose(result, functional.filter2d(x, np.ones((3, 3)), cval=2.5))


@settings(max_examples=40, deadline=None)
@given(
    height=st.integers(1, 14),
    width=st.integers(1, 14),
    kh=st.integers(1, 7),
    kw=st.integers(1, 7),
    row_chunk=st.integers(1, 14),
    col_chunk=st.integers(1, 14),
    mode=st.sampled_from(MODES),
    boundary=st.sampled_from(BOUNDARIES),
    seed=st.integers(0, 2**16),
)
def test_filter2d_any_chunking_property(
    height: int, width: int, kh: int, kw: int, row_chunk: int, col_chunk: int, mode: str, boundary: str, seed: int
) -> None:
    """Kernels may be larger than the image (pads wider than the image reflect/wrap several times) and the chunks."""
    if mode == "valid" and (kh > height or kw > width):
        kh, kw = min(kh, height), min(kw, width)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((height, width))
    k = rng.standard_normal((kh, kw))
    result = xd.filter2d(da.from_array(x, chunks=(row_chunk, col_chunk)), k, mode=mode, boundary=boundary, cval=-1.5)
    np.testing.assert_allclose(
        assert_chunks_describe_blocks(result), reference_filter(x, k, mode, boundary, -1.5), rtol=1e-9, atol=1e-9
    )


def test_filter2d_integer_input_is_float32_and_torch_kernel_accepted() -> None:
    x = np.arange(60, dtype=np.uint8).reshape(6, 10)
    k = torch.tensor([[1.0, -1.0]])
    result = xd.filter2d(da.from_array(x, chunks=4), k, boundary="edge")
    assert result.dtype == np.float32
    np.testing.assert_allclose(result.compute(), reference_filter(x, k.numpy(), "same", "edge", 0.0))


def reference_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride, padding, dilation, groups, padding_mode):
    xt, wt, bt = (torch.from_numpy(a).double() for a in (x, w, b))
    if padding_mode != "zeros":
        ph, pw = padding
        xt, padding = torch.nn.functional.pad(xt, (pw, pw, ph, ph), mode=TORCH_PADDING[padding_mode]), 0
    return torch.nn.functional.conv2d(xt, wt, bt, stride, padding, dilation, groups).numpy()


@pytest.mark.parametrize("padding_mode", list(TORCH_PADDING))
@pytest.mark.parametrize(("stride", "dilation", "groups"), [(1, 1, 1), ((2, 3), 1, 2), (1, (2, 1), 1), (3, 2, 4)])
def test_conv2d_equals_torch(padding_mode: str, stride, dilation, groups: int) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 4, 23, 21)).astype(np.float32)
    w = rng.standard_normal((8, 4 // groups, 3, 4)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    padding = (2, 1)
    chunks = (2, 1, (4, 9, 10), (2, 19))  # channels split (gathered inside), spatial chunks smaller than the kernel
    result = xd.conv2d(da.from_array(x, chunks=chunks), w, b, stride, padding, dilation, groups, padding_mode)
    expected = reference_conv(x, w, b, stride, padding, dilation, groups, padding_mode)
    np.testing.assert_allclose(assert_chunks_describe_blocks(result), expected, rtol=1e-4, atol=1e-4)
    assert result.chunks[0] == (2, 2, 1)


def test_conv2d_unbatched_same_padding_and_empty_batch() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 12, 9))
    w = rng.standard_normal((2, 3, 4, 2))
    result = xd.conv2d(da.from_array(x, chunks=(3, 5, 4)), w, padding="same")
    expected = torch.nn.functional.conv2d(torch.from_numpy(x)[None], torch.from_numpy(w), padding="same")[0].numpy()
    np.testing.assert_allclose(result.compute(), expected, rtol=1e-10)
    empty = xd.conv2d(da.zeros((0, 3, 12, 9), chunks=(1, 3, 6, 6)), w)
    assert empty.compute().shape == (0, 2, 9, 8)


def test_bad_arguments_name_the_argument() -> None:
    image = da.zeros((8, 8), chunks=4)
    with pytest.raises(TypeError, match=r"dask\.array\.from_array"):
        xd.filter2d(np.zeros((8, 8)), np.ones((3, 3)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode"):
        xd.filter2d(image, np.ones((3, 3)), mode="middle")
    with pytest.raises(ValueError, match="boundary"):
        xd.filter2d(image, np.ones((3, 3)), boundary="mirror")
    with pytest.raises(ValueError, match="larger than the 8x8 input"):
        xd.filter2d(image, np.ones((9, 3)), mode="valid")
    with pytest.raises(ValueError, match="algo"):
        xd.filter2d(image, np.ones((3, 3)), algo="magic")
    with pytest.raises(ValueError, match="threads_per_task"):
        xd.filter2d(image, np.ones((3, 3)), threads_per_task=0)
    with pytest.raises(ValueError, match="channels"):
        xd.conv2d(da.zeros((1, 3, 8, 8), chunks=4), np.ones((2, 2, 3, 3)))


def test_each_task_runs_with_threads_per_task_torch_threads_and_the_setting_is_restored(monkeypatch) -> None:
    seen: list[int] = []
    in_memory = functional.filter2d

    def recording(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return in_memory(*args, **kwargs)

    monkeypatch.setattr(functional, "filter2d", recording)
    before = torch.get_num_threads()
    image = da.ones((64, 64), chunks=16)
    xd.filter2d(image, np.ones((3, 3)), threads_per_task=1).compute(scheduler="threads", num_workers=2)
    assert set(seen[1:]) == {1}  # seen[0] is the graph-building probe, in the caller's thread
    assert torch.get_num_threads() == before


def test_local_cluster_matches_in_memory(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 50, 40)).astype(np.float32)
    k = rng.standard_normal((6, 5)).astype(np.float32)
    reports: list[tuple[int, int]] = []
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
    with cluster, distributed.Client(cluster):
        lazy = xd.filter2d(da.from_array(x, chunks=(1, 16, 15)), k, mode="full", boundary="symmetric")
        result = lazy.compute()
        xd.filter_to_zarr(
            da.from_array(x, chunks=(1, 32, 32)), tmp_path / "o.zarr", k, progress=lambda *r: reports.append(r)
        )
    np.testing.assert_allclose(result, reference_filter(x, k, "full", "symmetric", 0.0), rtol=1e-4, atol=1e-4)
    stored = zarr.open_array(str(tmp_path / "o.zarr"), mode="r")[:]
    np.testing.assert_allclose(stored, reference_filter(x, k, "same", "constant", 0.0), rtol=1e-4, atol=1e-4)
    assert reports == [(i, 12) for i in range(1, 13)]  # 3 planes x 2 x 2 chunks, each reported once


def test_killed_worker_process_still_gives_the_identical_result() -> None:
    """Two worker processes; one is SIGKILLed while it holds results the computation still needs."""
    distributed = pytest.importorskip("distributed")
    rng = np.random.default_rng(6)
    x = rng.standard_normal((400, 400)).astype(np.float32)
    k = rng.standard_normal((9, 9)).astype(np.float32)
    lazy = xd.filter2d(da.from_array(x, chunks=50), k, boundary="reflect")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        persisted = client.persist(lazy)
        victim = None
        deadline = time.monotonic() + 60
        while victim is None and time.monotonic() < deadline:
            holders = [address for address, keys in client.has_what().items() if keys]
            victim = holders[0] if holders else None
            time.sleep(0.05)
        assert victim is not None, "no worker finished a chunk within 60 s"
        pid = client.run(os.getpid, workers=[victim])[victim]
        os.kill(pid, signal.SIGKILL)
        result = persisted.compute()
    np.testing.assert_allclose(result, reference_filter(x, k, "same", "reflect", 0.0), rtol=1e-4, atol=1e-4)


def test_zarr_to_zarr_round_trip_with_progress(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    x = rng.standard_normal((70, 90)).astype(np.float32)
    source = zarr.create_array(store=str(tmp_path / "in.zarr"), shape=x.shape, chunks=(32, 32), dtype=x.dtype)
    source[:] = x
    k = rng.standard_normal((7, 8)).astype(np.float32)
    reports: list[tuple[int, int]] = []
    lazy = xd.open_array(tmp_path / "in.zarr", chunks=(32, 32))
    written = xd.filter_to_zarr(
        lazy, tmp_path / "out.zarr", k, mode="full", boundary="wrap", progress=lambda *r: reports.append(r)
    )
    stored = zarr.open_array(str(tmp_path / "out.zarr"), mode="r")
    assert stored.chunks == (32, 32)
    assert written.shape == stored.shape
    np.testing.assert_allclose(stored[:], reference_filter(x, k, "full", "wrap", 0.0), rtol=1e-4, atol=1e-4)
    total = 3 * 4  # (70 + 6) / 32 -> 3 row chunks, (90 + 7) / 32 -> 4 column chunks
    assert reports == [(i, total) for i in range(1, total + 1)]
    with pytest.raises(ValueError, match="overwrite=True"):
        xd.filter_to_zarr(tmp_path / "in.zarr", tmp_path / "out.zarr", k)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_store_to_store_reads_each_window_from_the_store(tmp_path: Path, mode: str, boundary: str) -> None:
    """A path source: one task per output chunk reads its window (halo, outer edge) straight from the store."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 23, 19)).astype(np.float32)
    source = zarr.create_array(store=str(tmp_path / "in.zarr"), shape=x.shape, chunks=(1, 8, 8), dtype=x.dtype)
    source[:] = x
    k = rng.standard_normal((7, 6)).astype(np.float32)  # wider than the 4-pixel chunks chosen below
    reports: list[tuple[int, int]] = []
    written = xd.filter_to_zarr(
        tmp_path / "in.zarr",
        tmp_path / "out.zarr",
        k,
        mode=mode,
        boundary=boundary,
        cval=0.5,
        chunks=(2, 9, 4),
        progress=lambda *r: reports.append(r),
    )
    expected = reference_filter(x, k, mode, boundary, 0.5)
    np.testing.assert_allclose(written[:], expected, rtol=1e-4, atol=1e-4)
    assert written.chunks == (2, 9, 4)
    assert reports[-1] == (written.nchunks, written.nchunks)


def test_store_to_store_from_a_colour_tiff(tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    rgb = rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb", rowsperstrip=5)
    k = rng.standard_normal((5, 5)).astype(np.float32)
    written = xd.filter_to_zarr(tmp_path / "rgb.tif", tmp_path / "o.zarr", k, boundary="wrap", chunks=(15, 12, 3))
    assert written.dtype == np.float32  # integers are filtered as float32, as in memory
    assert written.chunks == (3, 15, 12)
    expected = reference_filter(np.moveaxis(rgb, -1, 0), k, "same", "wrap", 0.0)
    np.testing.assert_allclose(written[:], expected, rtol=1e-4, atol=1e-3)


def test_tiff_is_read_lazily_as_planes(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    rgb = rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb", rowsperstrip=5)
    planes = xd.open_array(tmp_path / "rgb.tif")
    assert planes.shape == (3, 40, 30)
    k = np.ones((3, 3)) / 9
    result = xd.filter2d(planes, k, boundary="edge").compute()
    np.testing.assert_allclose(result, reference_filter(np.moveaxis(rgb, -1, 0), k, "same", "edge", 0.0), rtol=1e-5)


def test_cli_filters_a_zarr_store_out_of_core(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.cli_support import run_cli

    rng = np.random.default_rng(10)
    x = rng.standard_normal((2, 60, 50)).astype(np.float32)
    source = zarr.create_array(store=str(tmp_path / "in.zarr"), shape=x.shape, chunks=(1, 32, 32), dtype=x.dtype)
    source[:] = x
    kernel = [[1.0, 2.0, 0.5], [-1.0, 0.0, 3.0]]
    run = run_cli(
        capsys, "filter", tmp_path / "in.zarr", "-k", str(kernel), "--boundary", "reflect", "-o", tmp_path / "o.zarr"
    )
    assert run.code == 0, run.err
    stored = zarr.open_array(str(tmp_path / "o.zarr"), mode="r")
    assert stored.dtype == np.float32  # the float32 input's precision, although the CLI parses kernels in float64
    expected = reference_filter(x, np.array(kernel), "same", "reflect", 0.0)
    np.testing.assert_allclose(stored[:], expected, rtol=1e-4, atol=1e-4)


def test_cli_filters_a_tiff_into_zarr_chunk_by_chunk(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.cli_support import run_cli

    rng = np.random.default_rng(13)
    x = rng.integers(0, 65535, (70, 45), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "big.tif", x, rowsperstrip=8)
    run = run_cli(
        capsys, "filter", tmp_path / "big.tif", "-k", "box:5", "--boundary", "symmetric", "--chunk-size", 32,
        "-o", tmp_path / "o.zarr", "--json",
    )  # fmt: skip
    assert run.code == 0, run.err
    stored = zarr.open_array(str(tmp_path / "o.zarr"), mode="r")
    assert stored.chunks == (32, 32)
    assert "6 chunks" in run.out  # 3 x 2 chunks of 32 pixels
    expected = reference_filter(x, np.ones((5, 5)) / 25, "same", "symmetric", 0.0)
    np.testing.assert_allclose(stored[:], expected, rtol=1e-5, atol=1e-2)


MATCH_METHODS = ("sqdiff", "sqdiff_normed", "ccorr", "ccorr_normed", "ccoeff", "ccoeff_normed")


@pytest.mark.parametrize("method", MATCH_METHODS)
@pytest.mark.parametrize("mode", ["valid", "same", "full"])
def test_match_template_equals_in_memory(method: str, mode: str) -> None:
    """Chunks smaller and larger than the template, a stack of two templates with a weight mask, a uint8 image:
    every chunk's scores equal the in-memory call's (which the match_template tests hold to OpenCV)."""
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (53, 61), dtype=np.uint8)
    templates = np.stack([image[10:19, 20:27], image[30:39, 5:12]]).astype(np.float32)
    weights = rng.random((9, 7)).astype(np.float32)
    expected = xcorr.match_template(image, templates, method=method, mask=weights, mode=mode)
    for chunks in (6, (20, 25)):
        lazy = xd.match_template(da.from_array(image, chunks=chunks), templates, method=method, mask=weights, mode=mode)
        assert lazy.shape == expected.shape and lazy.dtype == expected.dtype
        score_range = float(expected.max() - expected.min())  # float32 scores: OpenCV's tolerance, 1e-5 of it
        np.testing.assert_allclose(lazy.compute(), expected, rtol=0, atol=1e-5 * score_range + 1e-6)


@settings(max_examples=15, deadline=None)
@given(
    rows=st.integers(3, 30),
    cols=st.integers(3, 30),
    height=st.integers(1, 8),
    width=st.integers(1, 8),
    mode=st.sampled_from(["valid", "same", "full"]),
    method=st.sampled_from(MATCH_METHODS),
)
def test_match_template_with_an_image_mask_equals_in_memory(
    rows: int, cols: int, height: int, width: int, mode: str, method: str
) -> None:
    rng = np.random.default_rng(rows * 31 + cols)
    image = rng.random((40, 45))
    used = rng.random((40, 45)) > 0.3
    template = rng.random((height, width))
    expected = xcorr.match_template(image, template, method=method, image_mask=used, mode=mode)
    lazy = xd.match_template(
        da.from_array(image, chunks=(rows, cols)), template, method=method, image_mask=used, mode=mode
    )
    # A window of two unmasked pixels scores exactly +-1, from moments that cancel (sums of squares less the
    # squared mean): the chunked and the whole sums round differently by up to ~5e-7 there (seen: rows=6, cols=15,
    # a 2x1 template, ccoeff_normed).
    np.testing.assert_allclose(lazy.compute(), expected, rtol=1e-7, atol=1e-6)


def test_match_template_refuses_what_the_in_memory_call_refuses() -> None:
    image = da.zeros((20, 20), chunks=8)
    with pytest.raises(ValueError, match="method"):
        xd.match_template(image, np.ones((3, 3)), method="nope")
    with pytest.raises(ValueError, match="image_mask"):
        xd.match_template(image, np.ones((3, 3)), image_mask=np.ones((5, 5)))
    with pytest.raises(ValueError, match="template"):
        xd.match_template(image, np.ones((2, 2, 2, 2)))
    with pytest.raises(TypeError, match="image"):
        xd.match_template(np.zeros((20, 20)), np.ones((3, 3)))  # type: ignore[arg-type]
