"""filter2d's channel_axis, dtype and out: against per-channel float64 loops, rounding and saturation by NumPy."""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import xcorr
from tests.naive import naive_filter

BOUNDARIES = ["constant", "reflect", "symmetric", "edge", "wrap"]


def per_channel(image: np.ndarray, kernel: np.ndarray, axis: int, **options: object) -> np.ndarray:
    """The reference: each channel's last two other axes filtered by the float64 loop, stacked back at ``axis``."""
    moved = np.moveaxis(image, axis, -3)
    planes = moved.reshape(-1, *moved.shape[-2:])
    filtered = np.stack([naive_filter(plane, kernel, **options) for plane in planes])
    return np.moveaxis(filtered.reshape(*moved.shape[:-2], *filtered.shape[-2:]), -3, axis)


@settings(max_examples=40, deadline=None)
@given(
    ndim=st.integers(3, 4),
    axis_choice=st.integers(0, 3),
    sizes=st.lists(st.integers(1, 7), min_size=4, max_size=4),
    kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    mode=st.sampled_from(["same", "full"]),
    boundary=st.sampled_from(BOUNDARIES),
    dtype=st.sampled_from([np.uint8, np.uint16, np.int16, np.float32, np.float64]),
    negative_axis=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_any_channel_axis_equals_filtering_each_channel(
    ndim: int,
    axis_choice: int,
    sizes: list[int],
    kernel: tuple[int, int],
    mode: str,
    boundary: str,
    dtype: type,
    negative_axis: bool,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    image = (rng.random(sizes[:ndim]) * 100).astype(dtype)
    k = rng.standard_normal(kernel)
    axis = axis_choice % ndim - (ndim if negative_axis else 0)
    result = xcorr.filter2d(image, k, mode=mode, boundary=boundary, cval=2.0, channel_axis=axis)
    expected = per_channel(image, k, axis, mode=mode, boundary=boundary, cval=2.0)
    assert result.shape == expected.shape and result.flags.c_contiguous
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-3)


@settings(max_examples=40, deadline=None)
@given(
    dtype=st.sampled_from([np.uint8, np.int8, np.uint16, np.int16, np.int32]),
    source=st.sampled_from([np.uint8, np.uint16, np.float32]),
    boundary=st.sampled_from(BOUNDARIES),
    seed=st.integers(0, 2**16),
)
def test_an_integer_dtype_is_the_rounded_saturated_float_result(
    dtype: type, source: type, boundary: str, seed: int
) -> None:
    """Integer image and kernel: every sum is exact in float32, so the result is exactly clip(rint(reference))."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (9, 11, 3)).astype(source)
    kernel = rng.integers(-3, 4, (3, 4)).astype(np.float32) / 2  # halves: ties to round half to even
    result = xcorr.filter2d(image, kernel, boundary=boundary, channel_axis=-1, dtype=dtype)
    info = np.iinfo(dtype)
    expected = np.clip(np.rint(per_channel(image, kernel, -1, boundary=boundary)), info.min, info.max)
    assert result.dtype == dtype
    np.testing.assert_array_equal(result, expected.astype(dtype))


@pytest.mark.parametrize(
    ("shape", "kernel_shape", "mode"),
    [
        ((9, 11, 3), (3, 4), "same"),  # narrow rows, in blocks
        ((13, 100, 3), (3, 3), "same"),  # four rows at a time, the 3x3 sweep
        ((14, 100, 3), (7, 2), "same"),  # four rows at a time, a group of seven kernel rows, a partial last block
        ((13, 100, 3), (4, 4), "same"),  # row by row
        ((6, 45), (2, 40), "valid"),  # dot products along long kernel rows
    ],
)
@pytest.mark.parametrize("dtype", [np.uint8, np.int16])
def test_the_direct_kernels_round_into_an_integer_dtype(
    shape: tuple[int, ...], kernel_shape: tuple[int, int], mode: str, dtype: type
) -> None:
    """Each of the direct algorithm's walks writes integer rows itself: exactly clip(rint(reference)), ties and
    saturation included (integer samples, kernel in halves: every sum exact in float32)."""
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, shape).astype(np.uint8)
    kernel = rng.integers(-6, 7, kernel_shape).astype(np.float32) / 2
    axis = -1 if len(shape) == 3 else None
    result = xcorr.filter2d(image, kernel, mode=mode, boundary="reflect", channel_axis=axis, dtype=dtype, algo="direct")
    reference = per_channel(image, kernel, -1, mode=mode, boundary="reflect") if axis else None
    if reference is None:
        reference = naive_filter(image, kernel, mode=mode, boundary="reflect")
    info = np.iinfo(dtype)
    assert result.dtype == dtype
    np.testing.assert_array_equal(result, np.clip(np.rint(reference), info.min, info.max).astype(dtype))


def test_a_float_dtype_is_computed_in() -> None:
    image = np.arange(25, dtype=np.uint16).reshape(5, 5) * 2000 + 1
    kernel = np.full((3, 3), 1 / 3)
    result = xcorr.filter2d(image, kernel, dtype=np.float64)
    assert result.dtype == np.float64
    np.testing.assert_allclose(result, naive_filter(image, kernel), rtol=1e-13)


def test_nan_becomes_the_minimum_of_an_integer_dtype() -> None:
    image = np.array([[1.0, np.nan, 1.0, 1.0]])
    result = xcorr.filter2d(image, np.array([[1.0]]), dtype=np.uint8)
    np.testing.assert_array_equal(result, [[1, 0, 1, 1]])  # the minimum of uint8, as OpenCV


@pytest.mark.parametrize("dtype", [None, np.uint8])
def test_out_is_written_in_place_and_returned(dtype: type | None) -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (12, 13, 3), dtype=np.uint8)
    kernel = rng.random((3, 3)) / 4
    out = np.zeros((12, 13, 3), dtype or np.uint8)
    returned = xcorr.filter2d(image, kernel, boundary="edge", channel_axis=-1, dtype=dtype, out=out)
    assert returned is out
    expected = np.clip(np.rint(per_channel(image, kernel, -1, boundary="edge")), 0, 255)
    np.testing.assert_allclose(out, expected, atol=1)


def test_a_tensor_out_is_written_in_place_and_may_be_a_view() -> None:
    image = torch.rand(2, 10, 10)
    buffer = torch.zeros(2, 10, 20)
    view = buffer[..., ::2]
    returned = xcorr.filter2d(image, torch.ones(3, 3), boundary="wrap", out=view)
    assert returned is view
    expected = np.stack([naive_filter(p, np.ones((3, 3)), boundary="wrap") for p in image.numpy()])
    np.testing.assert_allclose(buffer[..., ::2].numpy(), expected, rtol=1e-5, atol=1e-5)
    assert not buffer[..., 1::2].any()


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"out": np.zeros((4, 4))}, ValueError, r"out has shape \(4, 4\) but the result has shape \(4, 5\)"),
        ({"out": torch.zeros(4, 5)}, TypeError, "out must be a NumPy array, as the result is, got Tensor"),
        ({"out": np.zeros((4, 5)), "dtype": np.uint8}, ValueError, "out has dtype float64 but dtype="),
        ({"dtype": complex}, TypeError, "dtype must be an integer or float dtype"),
        ({"dtype": "pixels"}, TypeError, "dtype must be a real NumPy or torch dtype"),
        ({"channel_axis": 0}, ValueError, "channel_axis=0 needs an image with a channel axis besides"),
        ({"channel_axis": 1.0}, TypeError, "channel_axis must be an int"),
    ],
)
def test_bad_options_are_named(options: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        xcorr.filter2d(np.ones((4, 5)), np.ones((2, 2)), **options)


def test_a_read_only_out_and_an_out_of_range_axis_are_refused() -> None:
    out = np.zeros((4, 5))
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        xcorr.filter2d(np.ones((4, 5)), np.ones((2, 2)), out=out)
    with pytest.raises(ValueError, match="channel_axis=3 is out of range for a 3-D image"):
        xcorr.filter2d(np.ones((4, 5, 3)), np.ones((2, 2)), channel_axis=3)


def test_out_with_inputs_that_require_grad_is_refused() -> None:
    image = torch.ones(4, 5, requires_grad=True)
    with pytest.raises(ValueError, match="out= does not support automatic differentiation"):
        xcorr.filter2d(image, torch.ones(2, 2), out=torch.empty(4, 5))


def test_channels_last_colour_without_channel_axis_warns_once_naming_it() -> None:
    with pytest.warns(xcorr.ChannelsLastWarning, match="pass channel_axis=-1") as record:
        xcorr.filter2d(np.ones((20, 30, 3)), np.ones((3, 3)))
    assert len(record) == 1 and record[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        xcorr.filter2d(np.ones((3, 20, 30)), np.ones((3, 3)))
        xcorr.filter2d(np.ones((20, 30, 3)), np.ones((3, 3)), channel_axis=-1)
