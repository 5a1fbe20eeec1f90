"""conv2d against torch.nn.functional.conv2d / torch.nn.Conv2d: every argument convention and padding mode."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import xcorr


@given(
    groups=st.sampled_from([1, 2, 3]),
    kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    padding=st.tuples(st.integers(0, 3), st.integers(0, 3)),
    mode=st.sampled_from(["zeros", "reflect", "replicate", "circular"]),
    seed=st.integers(0, 1000),
)
def test_matches_torch_conv2d_layer(
    groups: int,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    padding: tuple[int, int],
    mode: str,
    seed: int,
) -> None:
    torch.manual_seed(seed)
    layer = torch.nn.Conv2d(2 * groups, 2 * groups, kernel, stride, padding, dilation, groups, True, mode).double()
    x = torch.randn(2, 2 * groups, 11, 12, dtype=torch.float64)  # larger than any pad, as torch's modes need
    ours = xcorr.conv2d(x, layer.weight, layer.bias, stride, padding, dilation, groups, mode)
    torch.testing.assert_close(ours, layer(x), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kernel", [(1, 1), (2, 3), (4, 4), (3, 5)])
@pytest.mark.parametrize("dilation", [1, 2])
def test_same_padding_like_torch_even_kernels_included(kernel: tuple[int, int], dilation: int) -> None:
    x, w = torch.randn(1, 2, 9, 10, dtype=torch.float64), torch.randn(3, 2, *kernel, dtype=torch.float64)
    expected = F.conv2d(x, w, padding="same", dilation=dilation)
    torch.testing.assert_close(xcorr.conv2d(x, w, padding="same", dilation=dilation), expected)
    torch.testing.assert_close(xcorr.conv2d(x, w, padding="valid"), F.conv2d(x, w, padding="valid"))


def test_unbatched_input() -> None:
    x, w, b = torch.randn(3, 8, 8), torch.randn(4, 3, 3, 3), torch.randn(4)
    torch.testing.assert_close(xcorr.conv2d(x, w, b, padding=1), F.conv2d(x, w, b, padding=1))


def test_empty_batch_gives_an_empty_result_as_torch() -> None:
    x, w = torch.randn(0, 2, 8, 8), torch.randn(4, 2, 3, 3)
    assert xcorr.conv2d(x, w).shape == F.conv2d(x, w).shape == (0, 4, 6, 6)


def test_numpy_in_numpy_out() -> None:
    x, w = np.random.default_rng(0).standard_normal((1, 1, 6, 6)), np.ones((1, 1, 2, 2))
    result = xcorr.conv2d(x, w)
    assert isinstance(result, np.ndarray)
    np.testing.assert_allclose(result, F.conv2d(torch.from_numpy(x), torch.from_numpy(w)).numpy())


def test_pads_wider_than_the_image_extend_like_numpy_pad() -> None:
    """torch refuses reflect/circular padding wider than the input; xcorr extends as numpy.pad does."""
    x, w = torch.randn(1, 1, 3, 3, dtype=torch.float64), torch.randn(1, 1, 3, 3, dtype=torch.float64)
    for mode, numpy_mode in [("reflect", "reflect"), ("replicate", "edge"), ("circular", "wrap")]:
        padded = torch.from_numpy(np.pad(x.numpy(), ((0, 0), (0, 0), (4, 4), (4, 4)), mode=numpy_mode))
        torch.testing.assert_close(xcorr.conv2d(x, w, padding=4, padding_mode=mode), F.conv2d(padded, w))


def test_mixed_dtypes_promote_as_torch() -> None:
    x, w = torch.randn(1, 1, 5, 5), torch.randn(1, 1, 2, 2, dtype=torch.float64)
    assert xcorr.conv2d(x, w).dtype == torch.float64
    half = torch.randn(1, 1, 5, 5).half()
    assert xcorr.conv2d(half, w.to(torch.bfloat16)).dtype == torch.float32
