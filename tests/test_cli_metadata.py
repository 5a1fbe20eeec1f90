"""Pages, orientation, colour profiles and resolution survive ``xcorr filter`` (checked with Pillow and tifffile)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageOps

from tests.cli_support import reference_filter, run_cli
from xcorr.cli.metadata import ORIENTATION_TAG, upright

BOX = np.ones((3, 3)) / 9


def srgb_profile() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def as_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(99)


def test_every_page_of_a_tiff_written_page_by_page_is_filtered(tmp_path, capsys, rng):
    pages = [rng.integers(0, 256, (30, 40), dtype=np.uint8) for _ in range(3)]
    source = tmp_path / "pages.tif"
    for page in pages:
        tifffile.imwrite(source, page, append=True)
    run = run_cli(capsys, "filter", source, "-k", "box:3", "-o", tmp_path / "out.tif")
    assert run.code == 0, run.err
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        assert len(tif.pages) == 3
        written = [page.asarray() for page in tif.pages]
    for page, out in zip(pages, written, strict=True):
        np.testing.assert_array_equal(out, as_uint8(reference_filter(page, BOX)))


def test_pages_of_two_sizes_are_refused_naming_them(tmp_path, capsys, rng):
    source = tmp_path / "mixed.tif"
    tifffile.imwrite(source, rng.integers(0, 256, (30, 40), dtype=np.uint8), append=True)
    tifffile.imwrite(source, rng.integers(0, 256, (10, 12), dtype=np.uint8), append=True)
    run = run_cli(capsys, "filter", source, "-k", "box:3", "-o", tmp_path / "out.tif")
    assert run.code == 1
    assert "series 0: 30x40 uint8; series 1: 10x12 uint8" in run.err
    assert not (tmp_path / "out.tif").exists()


def test_a_stack_is_not_squeezed_into_a_one_image_format(tmp_path, capsys, rng):
    source = tmp_path / "stack.tif"
    tifffile.imwrite(source, rng.integers(0, 256, (4, 16, 16), dtype=np.uint8), photometric="minisblack")
    run = run_cli(capsys, "filter", source, "-k", "box:3", "-o", tmp_path / "out.png")
    assert run.code == 1 and "stack of 4" in run.err
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_applied_and_the_output_is_upright(tmp_path, capsys, rng, orientation):
    stored = rng.integers(0, 256, (40, 64, 3), dtype=np.uint8)  # 64 wide as stored
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[ORIENTATION_TAG] = orientation
    exif[0x010F] = "ACME camera"
    source = tmp_path / "photo.jpg"
    image.save(source, exif=exif.tobytes(), quality=100, subsampling=0)
    with Image.open(source) as decoded:
        displayed = np.asarray(ImageOps.exif_transpose(decoded))  # what a viewer shows
    for suffix in (".jpg", ".png", ".tif"):
        target = tmp_path / f"edges{suffix}"
        run = run_cli(capsys, "filter", source, "-k", "sobel-x", "--abs", "-o", target)
        assert run.code == 0, run.err
        with Image.open(target) as out:
            assert out.getexif().get(ORIENTATION_TAG, 1) == 1
            assert out.size == (displayed.shape[1], displayed.shape[0])
            result = np.asarray(out.convert("RGB"))
        expected = np.stack(
            [
                as_uint8(np.abs(reference_filter(displayed[..., c], np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1.0]]))))
                for c in range(3)
            ],
            -1,
        )
        error = np.abs(result.astype(int) - expected)
        if suffix == ".jpg":  # lossy at quality 95: close on average (a wrong turn would be ~80 off on noise)
            assert error.mean() < 4
        else:
            assert error.max() == 0
    with Image.open(tmp_path / "edges.jpg") as out:
        assert out.getexif().get(0x010F) == "ACME camera"  # the other EXIF fields are kept


def test_upright_matches_pillow_for_all_eight_orientations(rng):
    stored = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    for orientation in range(1, 9):
        image = Image.fromarray(stored)
        image.getexif()[ORIENTATION_TAG] = orientation
        np.testing.assert_array_equal(
            upright(stored, orientation, samples_axis=True), np.asarray(ImageOps.exif_transpose(image))
        )
        np.testing.assert_array_equal(
            upright(stored[..., 0], orientation, samples_axis=False), np.asarray(ImageOps.exif_transpose(image))[..., 0]
        )


@pytest.mark.parametrize("source_suffix", [".jpg", ".png", ".tif"])
def test_icc_profile_and_dpi_travel_to_every_format(tmp_path, capsys, rng, source_suffix):
    icc = srgb_profile()
    source = tmp_path / f"in{source_suffix}"
    samples = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    if source_suffix == ".tif":
        tifffile.imwrite(
            source, samples, photometric="rgb", iccprofile=icc, resolution=(300, 300), resolutionunit="INCH"
        )
    else:
        Image.fromarray(samples).save(source, icc_profile=icc, dpi=(300, 300))
    for target_suffix in (".jpg", ".png", ".tif"):
        target = tmp_path / f"out{target_suffix}"
        run = run_cli(capsys, "filter", source, "-k", "box:3", "-o", target, "--force")
        assert run.code == 0, run.err
        with Image.open(target) as out:
            assert out.info.get("icc_profile") == icc, target_suffix
            assert tuple(round(float(d)) for d in out.info["dpi"]) == (300, 300), target_suffix


def test_tiff_orientation_tag_is_applied(tmp_path, capsys, rng):
    stored = rng.integers(0, 256, (12, 20), dtype=np.uint8)
    source = tmp_path / "turned.tif"
    tifffile.imwrite(source, stored, extratags=[(274, "H", 1, 6, True)])
    run = run_cli(capsys, "filter", source, "-k", "[[1]]", "-o", tmp_path / "out.tif")
    assert run.code == 0, run.err
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.tif"), np.rot90(stored, -1))


def test_the_out_of_core_route_refuses_a_tiff_of_several_series(tmp_path, capsys, rng):
    source = tmp_path / "pages.tif"
    for _ in range(2):
        tifffile.imwrite(source, rng.integers(0, 256, (30, 40), dtype=np.uint8), append=True)
    run = run_cli(capsys, "filter", source, "-k", "box:3", "-o", tmp_path / "out.zarr")
    assert run.code == 1 and "holds 2 image series" in run.err
    assert not (tmp_path / "out.zarr").exists()
