"""Every boundary on images large enough to take the border-band road (no padded copy; at least
``xcorr.boundaries.BAND_MIN_ELEMENTS`` input elements), against numpy.pad then SciPy, and against torch's
padding for conv2d's padding_mode, values and gradients. Smaller images (the padded copy) are covered by
test_filter2d.py."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import xcorr
from tests.test_filter2d import BOUNDARIES, scipy_filter
from xcorr.boundaries import BAND_MIN_ELEMENTS


def test_these_images_take_the_band_road() -> None:
    """The sizes below (and test_algorithms.py's integer images) lie above the threshold: if it moves, they must."""
    assert min(890 * 890, 3 * 520 * 530, 4 * 500 * 410, 900 * 880, 517 * 522 * 3, 515 * 520 * 3) >= BAND_MIN_ELEMENTS


@settings(max_examples=12, deadline=None)
@given(
    size=st.tuples(st.integers(890, 960), st.integers(890, 960)),
    kernel=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    mode=st.sampled_from(["same", "full"]),
    boundary=st.sampled_from(BOUNDARIES),
    cval=st.sampled_from([0.0, -1.5]),
    seed=st.integers(0, 2**16),
)
def test_large_images_match_numpy_pad_then_scipy(
    size: tuple[int, int], kernel: tuple[int, int], mode: str, boundary: str, cval: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    image, k = rng.standard_normal(size), rng.standard_normal(kernel)
    result = xcorr.filter2d(image, k, mode=mode, boundary=boundary, cval=cval)
    np.testing.assert_allclose(result, scipy_filter(image, k, mode, boundary, cval), rtol=1e-10, atol=1e-10)


def test_a_stack_in_float32_matches_per_plane_float64() -> None:
    rng = np.random.default_rng(3)
    stack, k = rng.standard_normal((3, 520, 530)).astype(np.float32), rng.standard_normal((5, 7))
    result = xcorr.filter2d(stack, k.astype(np.float32), boundary="reflect")
    assert result.dtype == np.float32
    for plane, expected in zip(result, stack.astype(np.float64), strict=True):
        np.testing.assert_allclose(plane, scipy_filter(expected, k, "same", "reflect", 0.0), rtol=1e-4, atol=1e-4)


TORCH_MODES = {"reflect": "reflect", "replicate": "replicate", "circular": "circular"}


@pytest.mark.parametrize("padding_mode", sorted(TORCH_MODES))
@pytest.mark.parametrize(("stride", "dilation", "padding"), [(1, 1, 2), (2, 1, (3, 1)), ((1, 2), (2, 3), (4, 5))])
def test_conv2d_padding_modes_match_torch_values_and_gradients(
    padding_mode: str, stride: object, dilation: object, padding: object
) -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, 500, 410, dtype=torch.float64, generator=generator, requires_grad=True)
    w = torch.randn(6, 2, 3, 5, dtype=torch.float64, generator=generator, requires_grad=True)
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    got = xcorr.conv2d(x, w, stride=stride, padding=padding, dilation=dilation, groups=2, padding_mode=padding_mode)
    padded = F.pad(x, (pw, pw, ph, ph), mode=TORCH_MODES[padding_mode])
    expected = F.conv2d(padded, w, stride=stride, dilation=dilation, groups=2)
    torch.testing.assert_close(got, expected)
    seed = torch.randn(expected.shape, dtype=torch.float64, generator=generator)
    torch.testing.assert_close(torch.autograd.grad(got, (x, w), seed), torch.autograd.grad(expected, (x, w), seed))


@pytest.mark.parametrize("boundary", BOUNDARIES[1:])
def test_filter2d_gradients_on_the_band_road(boundary: str) -> None:
    generator = torch.Generator().manual_seed(1)
    image = torch.randn(900, 880, dtype=torch.float64, generator=generator, requires_grad=True)
    kernel = torch.randn(4, 5, dtype=torch.float64, generator=generator, requires_grad=True)
    got = xcorr.filter2d(image, kernel, boundary=boundary)
    numpy_to_torch = {"reflect": "reflect", "symmetric": None, "edge": "replicate", "wrap": "circular"}
    if numpy_to_torch[boundary] is None:  # torch has no symmetric padding: gather with numpy.pad's indices
        rows = np.pad(np.arange(900), (1, 2), mode="symmetric")
        cols = np.pad(np.arange(880), (2, 2), mode="symmetric")
        padded = image[torch.from_numpy(rows)][:, torch.from_numpy(cols)]
    else:
        padded = F.pad(image[None, None], (2, 2, 1, 2), mode=numpy_to_torch[boundary])[0, 0]
    expected = F.conv2d(padded[None, None], kernel[None, None])[0, 0]
    torch.testing.assert_close(got, expected)
    seed = torch.randn(expected.shape, dtype=torch.float64, generator=generator)
    torch.testing.assert_close(
        torch.autograd.grad(got, (image, kernel), seed), torch.autograd.grad(expected, (image, kernel), seed)
    )


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("mode", ["same", "full"])
def test_channels_last_rows_extend_whole_pixels(boundary: str, mode: str) -> None:
    """(H, W, C) filtered in place as rows of interleaved samples: each channel as if filtered alone."""
    rng = np.random.default_rng(5)
    image, k = rng.standard_normal((517, 522, 3)), rng.standard_normal((4, 5))
    result = xcorr.filter2d(image, k, mode=mode, boundary=boundary, cval=0.5, channel_axis=-1)
    for channel in range(3):
        expected = scipy_filter(image[..., channel], k, mode, boundary, 0.5)
        np.testing.assert_allclose(result[..., channel], expected, rtol=1e-10, atol=1e-10)


@settings(max_examples=60, deadline=None)
@given(
    height=st.integers(1, 30),
    width=st.sampled_from([1, 3, 17, 60, 256, 290]),  # narrow rows run in blocks, wide ones in rows of four or one
    kernel=st.tuples(st.sampled_from([1, 2, 3, 5, 7, 12]), st.integers(1, 6)),
    stride=st.tuples(st.integers(1, 2), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    padding=st.tuples(st.integers(0, 40), st.integers(0, 7)),
    padding_mode=st.sampled_from(sorted(TORCH_MODES)),
    algo=st.sampled_from(["direct", "fft"]),
    seed=st.integers(0, 2**16),
)
def test_the_direct_kernels_and_the_fft_tiles_read_every_padding_mode(
    height: int,
    width: int,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    padding: tuple[int, int],
    padding_mode: str,
    algo: str,
    seed: int,
) -> None:
    """Without autograd, the direct kernels extend rows and border strips themselves, the FFT its border tiles
    (pads wider than the image too): against numpy.pad, then torch's convolution in float64."""
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.standard_normal((1, 2, height, width)))
    w = torch.from_numpy(rng.standard_normal((3, 2, *kernel)))
    numpy_mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[padding_mode]
    pads = ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2)
    padded = torch.from_numpy(np.pad(x.numpy(), pads, mode=numpy_mode))
    extent = (dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)
    if (
        padded.shape[-2] < extent[0]
        or padded.shape[-1] < extent[1]
        or (numpy_mode == "reflect" and 1 in (height, width))
    ):
        return
    got = xcorr.conv2d(x, w, stride=stride, padding=padding, dilation=dilation, padding_mode=padding_mode, algo=algo)
    torch.testing.assert_close(got, F.conv2d(padded, w, stride=stride, dilation=dilation))
