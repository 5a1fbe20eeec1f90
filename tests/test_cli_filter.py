"""``xcorr filter`` on files the tests write with Pillow/tifffile, checked against SciPy on the decoded samples."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import tifffile
from PIL import Image

from tests.cli_support import leftovers, reference_filter, run_cli, run_script
from xcorr.cli import images

SOBEL_X = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def write_png(path: Path, samples: np.ndarray) -> Path:
    Image.fromarray(samples).save(path)
    return path


def as_uint(values: np.ndarray, dtype: type) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.clip(np.rint(values), info.min, info.max).astype(dtype)


def test_grey_png_8bit_equals_scipy_rounded_and_clipped(tmp_path, capsys, rng):
    x = rng.integers(0, 256, (37, 53), dtype=np.uint8)
    source = write_png(tmp_path / "grey.png", x)
    run = run_cli(capsys, "filter", source, "-k", "sobel-x", "-o", tmp_path / "edges.png")
    assert run.code == 0, run.err
    out = Image.open(tmp_path / "edges.png")
    assert out.mode == "L"
    expected = reference_filter(x, SOBEL_X)
    np.testing.assert_array_equal(np.asarray(out), as_uint(expected, np.uint8))
    clipped = np.count_nonzero((expected < 0) | (expected > 255))
    assert f"{clipped} of {x.size} samples clipped" in run.err


def test_abs_and_normalize(tmp_path, capsys, rng):
    x = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    source = write_png(tmp_path / "grey.png", x)
    run = run_cli(capsys, "filter", source, "-k", "[[-1, 1]]", "--abs", "-o", tmp_path / "abs.png", "-q")
    assert run.code == 0
    assert run.err == ""
    expected = np.abs(reference_filter(x, np.array([[-1.0, 1.0]])))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "abs.png")), as_uint(expected, np.uint8))

    assert run_cli(capsys, "filter", source, "-k", "laplacian", "--normalize", "-o", tmp_path / "n.png").code == 0
    lap = reference_filter(x, np.array([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]))
    normalized = (lap - lap.min()) * (255 / (lap.max() - lap.min()))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "n.png")), as_uint(normalized, np.uint8))


def test_tiff_16bit_keeps_depth_valid_mode(tmp_path, capsys, rng):
    x = rng.integers(0, 65536, (33, 41), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "deep.tif", x)
    kernel = "[[1, -1], [2, 0]]"
    run = run_cli(capsys, "filter", tmp_path / "deep.tif", "-k", kernel, "--mode", "valid", "-o", tmp_path / "o.tif")
    assert run.code == 0, run.err
    out = tifffile.imread(tmp_path / "o.tif")
    assert out.dtype == np.uint16
    assert out.shape == (32, 40)
    expected = reference_filter(x, np.array([[1.0, -1.0], [2.0, 0.0]]), "valid")
    np.testing.assert_array_equal(out, as_uint(expected, np.uint16))


def test_float_outputs_and_boundaries(tmp_path, capsys, rng):
    x = rng.integers(0, 256, (25, 31), dtype=np.uint8)
    source = write_png(tmp_path / "grey.png", x)
    gaussian = "gaussian:5,1.2"
    kernel = np.exp(-((np.arange(5) - 2.0) ** 2) / (2 * 1.2**2))
    kernel = np.outer(kernel, kernel) / np.outer(kernel, kernel).sum()
    for boundary in ("reflect", "wrap"):
        target = tmp_path / f"{boundary}.tif"
        args = ("filter", source, "-k", gaussian, "--boundary", boundary, "--dtype", "float32", "-o", target)
        assert run_cli(capsys, *args).code == 0
        out = tifffile.imread(target)
        assert out.dtype == np.float32
        # float32 output of an 8-bit input is in full-scale units: 255 -> 1.0
        np.testing.assert_allclose(out, reference_filter(x, kernel, "same", boundary) / 255, rtol=1e-5, atol=1e-6)

    planes = rng.standard_normal((2, 16, 18))
    np.save(tmp_path / "stack.npy", planes)
    run = run_cli(
        capsys, "filter", tmp_path / "stack.npy", "-k", "[[1, 2, 3]]", "--mode", "full", "-o", tmp_path / "s.npy"
    )
    assert run.code == 0, run.err
    out = np.load(tmp_path / "s.npy")
    assert out.dtype == np.float64
    assert out.shape == (2, 16, 20)
    for plane, result in zip(planes, out, strict=True):
        np.testing.assert_allclose(result, reference_filter(plane, np.array([[1.0, 2.0, 3.0]]), "full"), atol=1e-10)


def test_rgba_png_filters_each_colour_and_keeps_alpha(tmp_path, capsys, rng):
    rgba = rng.integers(0, 256, (24, 28, 4), dtype=np.uint8)
    source = write_png(tmp_path / "rgba.png", rgba)
    assert run_cli(capsys, "filter", source, "-k", "sobel-x", "--abs", "-o", tmp_path / "same.png").code == 0
    out = np.asarray(Image.open(tmp_path / "same.png"))
    assert out.shape == rgba.shape
    for c in range(3):
        expected = as_uint(np.abs(reference_filter(rgba[..., c], SOBEL_X)), np.uint8)
        np.testing.assert_array_equal(out[..., c], expected)
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])

    # 'valid' output pixels sit on the kernel's anchor: alpha is cropped with them, never filtered
    assert run_cli(capsys, "filter", source, "-k", "box:3", "--mode", "valid", "-o", tmp_path / "v.png").code == 0
    out = np.asarray(Image.open(tmp_path / "v.png"))
    assert out.shape == (22, 26, 4)
    np.testing.assert_array_equal(out[..., 3], rgba[1:-1, 1:-1, 3])
    box = np.full((3, 3), 1 / 9)
    for c in range(3):
        diff = out[..., c].astype(int) - as_uint(reference_filter(rgba[..., c], box, "valid"), np.uint8)
        assert np.abs(diff).max() <= 1  # ties at .5 may round either way in float arithmetic


def test_rgb_jpeg_is_read_and_written_lossily(tmp_path, capsys, rng):
    i, j = np.mgrid[0:32, 0:32]
    smooth = np.stack([128 + 60 * np.sin(i / 5 + c) * np.cos(j / 7) for c in range(3)], axis=-1).astype(np.uint8)
    Image.fromarray(smooth).save(tmp_path / "in.jpg", quality=100, subsampling=0)
    x = np.asarray(Image.open(tmp_path / "in.jpg"))
    assert run_cli(capsys, "filter", tmp_path / "in.jpg", "-k", "box:3", "-o", tmp_path / "out.jpg").code == 0
    out = np.asarray(Image.open(tmp_path / "out.jpg")).astype(float)
    expected = np.stack([reference_filter(x[..., c], np.full((3, 3), 1 / 9)) for c in range(3)], axis=-1)
    assert out.shape == x.shape
    assert np.abs(out - expected).mean() < 1.5


@pytest.mark.parametrize("samples", [(8, 9), (8, 9, 2), (8, 9, 3), (8, 9, 4)], ids=["grey", "grey+a", "rgb", "rgba"])
def test_identity_kernel_round_trips_16bit_png_and_tiff_exactly(tmp_path, capsys, rng, samples):
    x = rng.integers(0, 65536, samples, dtype=np.uint16)
    (tmp_path / "in.png").write_bytes(imagecodecs.png_encode(x))
    colour = {3: "rgb", 4: "rgb"}.get(x.shape[-1] if x.ndim == 3 else 1, "minisblack")
    extras = ["unassalpha"] if x.ndim == 3 and x.shape[-1] in (2, 4) else None
    tifffile.imwrite(tmp_path / "in.tif", x, photometric=colour, extrasamples=extras)
    for suffix in ("png", "tif"):
        target = tmp_path / f"out.{suffix}"
        assert run_cli(capsys, "filter", tmp_path / f"in.{suffix}", "-k", "[[1]]", "-o", target).code == 0
        out = imagecodecs.png_decode(target.read_bytes()) if suffix == "png" else tifffile.imread(target)
        assert out.dtype == np.uint16
        np.testing.assert_array_equal(out, x)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge image (a decompression bomb) and whose data is empty."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_bad_inputs_one_line_exit_1_and_no_output(tmp_path, capsys, rng):
    good = rng.integers(0, 256, (16, 16), dtype=np.uint8)
    png_bytes = (write_png(tmp_path / "good.png", good)).read_bytes()
    tifffile.imwrite(tmp_path / "good.tif", good)
    Image.fromarray(good).save(tmp_path / "good.jpg")
    jpeg_bytes = (tmp_path / "good.jpg").read_bytes()
    cases = {
        "missing.png": (None, "no such file"),
        "picture.bmp": (b"BM....", "unsupported format '.bmp'"),
        "garbage.png": (b"this is not an image at all", "not a PNG file"),
        "truncated.png": (png_bytes[: len(png_bytes) // 2], "corrupt or truncated PNG file"),
        "truncated.tif": ((tmp_path / "good.tif").read_bytes()[:120], "corrupt or truncated TIFF file"),
        "garbage.jpg": (b"\xff\xd8\xff not really", "not a JPEG file"),
        "truncated.jpg": (jpeg_bytes[: len(jpeg_bytes) // 2], "corrupt or truncated JPEG file"),
        "bomb.png": (png_header_only(30_000, 30_000), "exceeds the decompression-bomb limit"),
    }
    out_dir = tmp_path / "out"
    for name, (content, message) in cases.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
        run = run_cli(capsys, "filter", tmp_path / name, "-k", "edge", "--out-dir", out_dir)
        assert run.code == 1, name
        assert message in run.err, (name, run.err)
        assert "Traceback" not in run.err
        assert run.err.strip().count("\n") == 0, run.err  # one line
        assert not (out_dir / name).exists()
    small = run_cli(
        capsys, "filter", tmp_path / "good.png", "-k", "edge", "--max-pixels", 100, "-o", tmp_path / "x.png"
    )
    assert small.code == 1
    assert "256 pixels exceeds the decompression-bomb limit of 100" in small.err
    too_big = run_cli(
        capsys, "filter", tmp_path / "good.png", "-k", "box:17", "--mode", "valid", "-o", tmp_path / "x.png"
    )
    assert too_big.code == 1
    assert "larger than" in too_big.err
    assert "mode='same'" in too_big.err
    assert not (tmp_path / "x.png").exists()
    assert leftovers(tmp_path) == []
    assert leftovers(out_dir) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-k", "[[1, 2], [3]]", "-o", "out.png"), "is not a numeric list literal"),
        (("-k", "sobel-z", "-o", "out.png"), "unknown kernel name 'sobel-z'"),
        (("-k", "[[1, 2]", "-o", "out.png"), "is not a numeric list literal"),
        (("-k", "[]", "-o", "out.png"), "must be a non-empty 2-D array"),
        (("-k", "missing.npy", "-o", "out.png"), "kernel file missing.npy: no such file"),
        (("-k", "edge", "--mode", "middle", "-o", "out.png"), "'middle' is not one of"),
        (("-k", "edge", "--algo", "magic", "-o", "out.png"), "--algo 'magic' is unknown"),
        (("-k", "edge"), "give exactly one of -o/--output"),
        (("-k", "edge", "-o", "out.gif"), "unsupported output format '.gif'"),
        (("-k", "edge", "-o", "out.png", "--out-dir", "out"), "give exactly one of -o/--output"),
    ],
)
def test_usage_errors_exit_2(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    source = write_png(tmp_path / "in.png", np.zeros((4, 4), np.uint8))
    run = run_cli(capsys, "filter", source, *args)
    assert run.code == 2, run.err
    assert message in run.err, run.err
    assert "Traceback" not in run.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_kernel_files(tmp_path, capsys, rng):
    x = rng.integers(0, 256, (12, 14), dtype=np.uint8)
    source = write_png(tmp_path / "in.png", x)
    kernel = np.array([[1.0, 0.0], [0.0, -1.0], [2.0, 0.0]])
    np.save(tmp_path / "k.npy", kernel)
    (tmp_path / "k.csv").write_text("1,0\n0,-1\n2,0\n")
    for spec in ("k.npy", "k.csv"):
        target = tmp_path / f"{spec}.npy"
        run = run_cli(capsys, "filter", source, "-k", tmp_path / spec, "--dtype", "float64", "-o", target)
        assert run.code == 0, run.err
        np.testing.assert_allclose(np.load(target), reference_filter(x, kernel) / 255, atol=1e-12)


def test_no_overwrite_without_force_and_never_over_an_input(tmp_path, capsys, rng):
    x = rng.integers(0, 256, (10, 10), dtype=np.uint8)
    source = write_png(tmp_path / "in.png", x)
    original = source.read_bytes()
    target = tmp_path / "out.png"
    target.write_bytes(b"precious")
    refused = run_cli(capsys, "filter", source, "-k", "edge", "-o", target)
    assert refused.code == 1
    assert "already exists; pass --force" in refused.err
    assert target.read_bytes() == b"precious"
    assert run_cli(capsys, "filter", source, "-k", "edge", "-o", target, "--force").code == 0
    np.testing.assert_array_equal(
        np.asarray(Image.open(target)), as_uint(reference_filter(x, np.array([[-1.0, 1]])), np.uint8)
    )

    (tmp_path / "link.png").symlink_to(source)
    for clobber in (source, tmp_path / "link.png"):
        run = run_cli(capsys, "filter", source, "-k", "edge", "-o", clobber, "--force")
        assert run.code == 1
        assert "refusing to write over the input" in run.err
    run = run_cli(capsys, "filter", source, "-k", "edge", "--out-dir", tmp_path, "--force")
    assert run.code == 1
    assert "refusing to write over the input" in run.err
    assert source.read_bytes() == original
    assert leftovers(tmp_path) == []


def test_interrupted_write_leaves_nothing(tmp_path, capsys, monkeypatch, rng):
    source = write_png(tmp_path / "in.png", rng.integers(0, 256, (10, 10), dtype=np.uint8))

    def crash_halfway(picture: images.Picture, path: Path) -> None:
        path.write_bytes(b"\x89PNG half an image")
        raise KeyboardInterrupt

    monkeypatch.setitem(images._WRITERS, "png", crash_halfway)
    run = run_cli(capsys, "filter", source, "-k", "edge", "-o", tmp_path / "out.png")
    assert run.code == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_batch_with_one_corrupt_file_real_script(tmp_path, rng):
    """The console script end to end: a batch goes past a corrupt file, reports it, exits 1."""
    inputs = []
    for i in range(3):
        x = rng.integers(0, 256, (12, 15), dtype=np.uint8)
        inputs.append(write_png(tmp_path / f"img{i}.png", x))
    (tmp_path / "broken.png").write_bytes(inputs[0].read_bytes()[:60])
    batch = [inputs[0], tmp_path / "broken.png", *inputs[1:]]
    run = run_script("filter", *batch, "-k", "[[-1,1]]", "--abs", "--out-dir", tmp_path / "out")
    assert run.code == 1
    assert "broken.png: corrupt or truncated PNG file" in run.err
    assert "Traceback" not in run.err
    assert "filtered 3 of 4 files; 1 failed" in run.err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["img0.png", "img1.png", "img2.png"]
    for source in inputs:
        x = np.asarray(Image.open(source))
        expected = as_uint(np.abs(reference_filter(x, np.array([[-1.0, 1.0]]))), np.uint8)
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / source.name)), expected)
