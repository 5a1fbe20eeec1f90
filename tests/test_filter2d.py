"""filter2d against SciPy and numpy.pad: output shapes, alignment, boundaries, dtypes, leading dims."""

import numpy as np
import pytest
import scipy.signal
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import xcorr
from tests.naive import extended

BOUNDARIES = ["constant", "reflect", "symmetric", "edge", "wrap"]


def scipy_filter(image: np.ndarray, kernel: np.ndarray, mode: str, boundary: str, cval: float) -> np.ndarray:
    """numpy.pad to the mode's size with the boundary, then scipy's valid correlation."""
    return scipy.signal.correlate2d(extended(image, kernel.shape, mode, boundary, cval), kernel, "valid")


images = hnp.arrays(
    np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12), elements=st.floats(-4, 4)
)
kernels = hnp.arrays(
    np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=6), elements=st.floats(-4, 4)
)


@given(image=images, kernel=kernels, mode=st.sampled_from(["same", "full"]), boundary=st.sampled_from(BOUNDARIES))
def test_matches_numpy_pad_then_scipy(image: np.ndarray, kernel: np.ndarray, mode: str, boundary: str) -> None:
    result = xcorr.filter2d(image, kernel, mode=mode, boundary=boundary, cval=1.5)
    np.testing.assert_allclose(result, scipy_filter(image, kernel, mode, boundary, 1.5), rtol=1e-10, atol=1e-10)


@given(image=images, kernel=kernels, mode=st.sampled_from(["valid", "same", "full"]))
def test_zero_boundary_is_scipy_correlate2d(image: np.ndarray, kernel: np.ndarray, mode: str) -> None:
    if mode == "valid" and (kernel.shape[0] > image.shape[0] or kernel.shape[1] > image.shape[1]):
        with pytest.raises(ValueError, match="larger than"):
            xcorr.filter2d(image, kernel, mode=mode)
        return
    expected = scipy.signal.correlate2d(image, kernel, mode)
    np.testing.assert_allclose(xcorr.filter2d(image, kernel, mode=mode), expected, rtol=1e-10, atol=1e-10)


@given(image=images, kernel=kernels)
def test_correlation_is_convolution_with_the_flipped_kernel(image: np.ndarray, kernel: np.ndarray) -> None:
    convolved = scipy.signal.convolve2d(image, kernel[::-1, ::-1], "full")
    np.testing.assert_allclose(xcorr.filter2d(image, kernel, mode="full"), convolved, rtol=1e-10, atol=1e-10)


@given(image=images, kernel=kernels, a=st.floats(-3, 3), seed=st.integers(0, 1000))
def test_linear_in_the_image(image: np.ndarray, kernel: np.ndarray, a: float, seed: int) -> None:
    other = np.random.default_rng(seed).standard_normal(image.shape)
    combined = xcorr.filter2d(a * image + other, kernel)
    separate = a * xcorr.filter2d(image, kernel) + xcorr.filter2d(other, kernel)
    np.testing.assert_allclose(combined, separate, rtol=1e-9, atol=1e-9)


@given(image=images, rows=st.integers(1, 5), cols=st.integers(1, 5), boundary=st.sampled_from(BOUNDARIES))
def test_centred_delta_is_the_identity_in_same_mode(image: np.ndarray, rows: int, cols: int, boundary: str) -> None:
    delta = np.zeros((rows, cols))
    delta[(rows - 1) // 2, (cols - 1) // 2] = 1.0  # scipy's 'same' centre, even sizes included
    np.testing.assert_array_equal(xcorr.filter2d(image, delta, boundary=boundary), image)


def test_leading_dims_are_filtered_slice_by_slice() -> None:
    stack = np.random.default_rng(0).standard_normal((2, 3, 9, 10))
    kernel = np.random.default_rng(1).standard_normal((3, 4))
    result = xcorr.filter2d(stack, kernel, mode="valid")
    assert result.shape == (2, 3, 7, 7)
    for i in range(2):
        for j in range(3):
            np.testing.assert_allclose(result[i, j], scipy.signal.correlate2d(stack[i, j], kernel, "valid"), atol=1e-12)


def test_empty_leading_batch_gives_an_empty_result() -> None:
    assert xcorr.filter2d(np.zeros((0, 5, 5)), np.ones((3, 3))).shape == (0, 5, 5)


@pytest.mark.parametrize(
    ("image_dtype", "kernel_dtype", "expected"),
    [
        (np.uint8, np.float64, np.float64),
        (np.int32, np.int64, np.float32),
        (np.bool_, np.bool_, np.float32),
        (np.float16, np.float16, np.float16),
        (np.float32, np.float32, np.float32),
        (np.float32, np.float64, np.float64),
    ],
)
def test_dtype_rules(image_dtype: type, kernel_dtype: type, expected: type) -> None:
    image = (np.arange(30).reshape(5, 6) % 3).astype(image_dtype)
    kernel = np.array([[1, 0], [0, 1]], dtype=kernel_dtype)
    result = xcorr.filter2d(image, kernel, mode="valid")
    assert result.dtype == expected
    reference = scipy.signal.correlate2d(image.astype(np.float64), kernel.astype(np.float64), "valid")
    np.testing.assert_allclose(result.astype(np.float64), reference, rtol=1e-3)


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("samples", [np.uint8, np.uint16])
@pytest.mark.parametrize("size", [(7, 9), (300, 310)])  # all border, and an interior between the borders
def test_8_and_16_bit_samples_in_every_boundary(boundary: str, samples: type, size: tuple[int, int]) -> None:
    """8/16-bit images (NumPy, and torch tensors) against numpy.pad then SciPy on the float64 values: exact to
    float64 rounding with a float64 kernel, to float32 rounding with a float32 one."""
    rng = np.random.default_rng(size[0])
    image = rng.integers(0, np.iinfo(samples).max + 1, size, dtype=samples)
    kernel = rng.integers(-3, 4, (3, 5)).astype(np.float64)
    expected = scipy_filter(image.astype(np.float64), kernel, "same", boundary, 11.0)
    scale = scipy_filter(image.astype(np.float64), np.abs(kernel), "same", boundary, 11.0)
    as_float64 = xcorr.filter2d(image, kernel, boundary=boundary, cval=11.0)
    assert as_float64.dtype == np.float64
    assert np.all(np.abs(as_float64 - expected) <= 1e-14 * scale)
    as_tensor = xcorr.filter2d(torch.from_numpy(image), torch.from_numpy(kernel).float(), boundary=boundary, cval=11.0)
    assert as_tensor.dtype == torch.float32
    assert np.all(np.abs(as_tensor.numpy() - expected) <= 8 * 2.0**-23 * scale)


def test_bfloat16_stays_bfloat16() -> None:
    image = torch.arange(20.0).reshape(4, 5).to(torch.bfloat16)
    result = xcorr.filter2d(image, torch.ones(2, 2, dtype=torch.bfloat16), mode="valid")
    assert result.dtype == torch.bfloat16
    expected = scipy.signal.correlate2d(np.arange(20.0).reshape(4, 5), np.ones((2, 2)), "valid")
    np.testing.assert_allclose(result.float().numpy(), expected, rtol=1e-2)


def test_torch_in_torch_out_and_differentiable() -> None:
    image = torch.randn(7, 8, dtype=torch.float64, requires_grad=True)
    kernel = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: xcorr.filter2d(a, b, boundary="reflect"), (image, kernel))


def test_numpy_kernel_with_torch_image_gives_torch() -> None:
    result = xcorr.filter2d(torch.ones(4, 4), np.ones((2, 2)))
    assert isinstance(result, torch.Tensor)


@pytest.mark.parametrize("algo", xcorr.algorithms())
def test_nan_and_inf_propagate_as_in_the_reference(algo: str) -> None:
    image = np.random.default_rng(0).standard_normal((40, 40)).astype(np.float32)
    image[5, 7] = np.nan
    image[30, 20] = np.inf
    kernel = np.random.default_rng(1).random((9, 9)).astype(np.float32) + 0.1
    expected = scipy.signal.correlate2d(image.astype(np.float64), kernel.astype(np.float64), "same")
    try:
        result = xcorr.filter2d(image, kernel, algo=algo)
    except xcorr.UnsupportedError:
        result = xcorr.filter2d(image, kernel)
    np.testing.assert_array_equal(np.isnan(result), np.isnan(expected))
    np.testing.assert_array_equal(np.isposinf(result), np.isposinf(expected))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(result[finite], expected[finite], rtol=1e-3, atol=1e-3)
