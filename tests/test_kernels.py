"""Named kernels: values from their definitions, and the spellings by_name accepts."""

import numpy as np
import pytest
import scipy.signal

from xcorr import kernels


def test_derivative_kernels_respond_to_increase_along_their_axis() -> None:
    ramp = np.tile(np.arange(6.0), (6, 1))  # increases along x by 1 per pixel
    for name, gain in [("sobel-x", 8.0), ("prewitt-x", 6.0), ("scharr-x", 32.0)]:
        k = kernels.by_name(name)
        np.testing.assert_allclose(scipy.signal.correlate2d(ramp, k, "valid"), gain)
        np.testing.assert_allclose(scipy.signal.correlate2d(ramp.T, kernels.by_name(name[:-1] + "y"), "valid"), gain)
    np.testing.assert_allclose(scipy.signal.correlate2d(ramp, kernels.edge(), "valid"), 1.0)


@pytest.mark.parametrize("name", ["laplacian"])
def test_laplacian_vanishes_on_linear_ramps(name: str) -> None:
    plane = np.add.outer(np.arange(7.0) * 2, np.arange(7.0) * 3)
    np.testing.assert_allclose(scipy.signal.correlate2d(plane, kernels.by_name(name), "valid"), 0.0)


@pytest.mark.parametrize("name", ["sharpen", "emboss", "box:4", "gaussian:7,1.5", "gaussian:5"])
def test_smoothing_and_sharpening_kernels_keep_flat_areas(name: str) -> None:
    assert kernels.by_name(name).sum() == pytest.approx(1.0)


def test_gaussian_matches_scipy_window_and_opencv_default_sigma() -> None:
    g = scipy.signal.windows.gaussian(7, 1.5)
    np.testing.assert_allclose(kernels.gaussian(7, 1.5), np.outer(g, g) / np.outer(g, g).sum())
    sigma = 0.3 * ((7 - 1) * 0.5 - 1) + 0.8
    default = scipy.signal.windows.gaussian(7, sigma)
    np.testing.assert_allclose(kernels.gaussian(7), np.outer(default, default) / np.outer(default, default).sum())
    assert np.linalg.matrix_rank(kernels.gaussian(9, 2.0)) == 1


def test_box() -> None:
    np.testing.assert_array_equal(kernels.by_name("box:3"), np.full((3, 3), 1 / 9))


def test_every_name_is_a_2d_float64_array() -> None:
    for name in kernels.NAMED:
        k = kernels.by_name(name)
        assert k.ndim == 2 and k.dtype == np.float64, name
