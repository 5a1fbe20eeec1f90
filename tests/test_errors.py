"""Bad input: each gets the documented error, naming the argument and what to do."""

import numpy as np
import pytest
import torch

import xcorr
from xcorr.algo import get_algorithm

IMAGE, KERNEL = np.ones((4, 5)), np.ones((2, 2))
X4, W4 = torch.ones(1, 2, 5, 5), torch.ones(3, 2, 3, 3)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: xcorr.corr2d(np.ones((3, 4)), np.ones((5, 5))),
            ValueError,
            r"kernel 5x5 is larger than the 3x4 input in 'valid' mode; use xcorr.filter2d\(x, k, mode='same'\)",
        ),
        (
            lambda: xcorr.filter2d(np.ones((3, 4)), np.ones((5, 5)), mode="valid"),
            ValueError,
            "kernel 5x5 is larger than the 3x4 input in 'valid' mode; use mode='same' or pad the input",
        ),
        (lambda: xcorr.corr2d(np.ones(5), KERNEL), ValueError, r"x must be 2-D \(H, W\).*got 1-D"),
        (lambda: xcorr.corr2d(IMAGE, np.ones((1, 2, 2))), ValueError, r"k must be 2-D \(h, w\), got 3-D"),
        (lambda: xcorr.filter2d(np.ones(5), KERNEL), ValueError, r"image must be \(H, W\) or \(..., H, W\)"),
        (
            lambda: xcorr.filter2d(IMAGE, KERNEL, mode="sme"),
            ValueError,
            "mode must be one of 'valid', 'same', 'full', got 'sme'",
        ),
        (
            lambda: xcorr.filter2d(IMAGE, KERNEL, boundary="mirror"),
            ValueError,
            "boundary must be one of 'constant'.*got 'mirror'",
        ),
        (
            lambda: xcorr.filter2d(IMAGE, KERNEL, algo="fastest"),
            ValueError,
            "unknown algorithm 'fastest'; algo= takes one of 'auto'",
        ),
        (lambda: xcorr.filter2d(np.ones((0, 5)), KERNEL), ValueError, r"image is empty \(spatial size 0x5\)"),
        (lambda: xcorr.filter2d(IMAGE, np.ones((2, 0))), ValueError, r"kernel is empty \(spatial size 2x0\)"),
        (
            lambda: xcorr.filter2d(np.array([["a", "b"]]), KERNEL),
            TypeError,
            "image must hold numbers, got a NumPy array of dtype <U1",
        ),
        (lambda: xcorr.filter2d(IMAGE.astype(complex), KERNEL), TypeError, "image is complex"),
        (
            lambda: xcorr.conv2d(torch.ones(5, 5), W4),
            ValueError,
            r"input must be \(N, C, H, W\) or unbatched \(C, H, W\), got 2-D",
        ),
        (lambda: xcorr.conv2d(X4, torch.ones(3, 3, 3)), ValueError, "weight must be .*, got 3-D"),
        (
            lambda: xcorr.conv2d(torch.ones(1, 3, 5, 5), W4),
            ValueError,
            r"input has 3 channels but weight of shape \(3, 2, 3, 3\) with groups=1 expects 2",
        ),
        (
            lambda: xcorr.conv2d(torch.ones(1, 4, 5, 5), W4, groups=2),
            ValueError,
            "weight has 3 output channels, which groups=2 does not divide",
        ),
        (lambda: xcorr.conv2d(X4, W4, groups=0), ValueError, "groups must be a positive int, got 0"),
        (lambda: xcorr.conv2d(X4, W4, stride=0), ValueError, "stride must be at least 1, got 0"),
        (lambda: xcorr.conv2d(X4, W4, stride=(1, 2, 3)), TypeError, "stride must be an int or a pair of ints"),
        (lambda: xcorr.conv2d(X4, W4, padding=-1), ValueError, "padding must be at least 0, got -1"),
        (
            lambda: xcorr.conv2d(X4, W4, padding="half"),
            ValueError,
            "padding must be one of 'valid', 'same', got 'half'",
        ),
        (
            lambda: xcorr.conv2d(X4, W4, padding="same", stride=2),
            ValueError,
            "padding='same' is not supported for strided convolutions",
        ),
        (
            lambda: xcorr.conv2d(X4, W4, padding_mode="mirror"),
            ValueError,
            "padding_mode must be one of 'zeros', 'reflect', 'replicate', 'circular'",
        ),
        (
            lambda: xcorr.conv2d(X4, torch.ones(3, 2, 7, 7)),
            ValueError,
            "padded input 5x5 is smaller than the dilated kernel 7x7",
        ),
        (
            lambda: xcorr.conv2d(X4, W4, torch.ones(2)),
            ValueError,
            r"bias must have shape \(3,\) to match the weight, got \(2,\)",
        ),
        (
            lambda: xcorr.fit_kernel(IMAGE, np.ones((3, 3)), (2, 2)),
            ValueError,
            r"y has shape \(3, 3\), but a 2x2 kernel on x of shape \(4, 5\) gives \(3, 4\)",
        ),
        (
            lambda: xcorr.fit_kernel(IMAGE, np.ones((3, 4)), (2, 2), method="adam"),
            ValueError,
            "method must be one of 'lstsq', 'gd', got 'adam'",
        ),
        (
            lambda: xcorr.fit_kernel(IMAGE, np.ones((3, 4)), (2, 2), ridge=-1.0),
            ValueError,
            "ridge must be a non-negative number",
        ),
        (lambda: xcorr.plan((1, 1, 8), (1, 1, 3, 3)), ValueError, r"input_shape must be \(N, C, H, W\)"),
        (
            lambda: xcorr.kernels.by_name("sobelx"),
            ValueError,
            "unknown kernel name 'sobelx'; known names: edge, sobel-x",
        ),
        (lambda: xcorr.kernels.by_name("gaussian:a"), ValueError, "kernel parameters must be numbers"),
        (lambda: xcorr.kernels.box(0), ValueError, "box size must be a positive int, got 0"),
        (lambda: xcorr.nn.Conv2d(1, 1, 3, algo="fastest"), ValueError, "unknown algorithm 'fastest'"),
        (lambda: xcorr.use("fastest").__enter__(), ValueError, "unknown algorithm 'fastest'"),
        (
            lambda: xcorr.use(precision="high").__enter__(),
            ValueError,
            "precision must be one of 'any', 'exact', got 'high'",
        ),
    ],
)
def test_bad_input_is_refused_with_a_helpful_message(call, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("algo", xcorr.algorithms())
def test_forced_algorithm_either_computes_or_says_why_not(algo: str) -> None:
    """float16 is a case some algorithms decline: they must say so with UnsupportedError, a ValueError."""
    image, kernel = torch.arange(64.0).reshape(8, 8).half(), torch.ones(3, 3, dtype=torch.float16)
    problem = xcorr.plan((1, 1, 8, 8), (1, 1, 3, 3), padding=1, dtype=torch.float16).problem
    reason = get_algorithm(algo).unsupported(problem)
    if reason is None:
        expected = torch.nn.functional.conv2d(image.float()[None, None], kernel.float()[None, None], padding=1)
        torch.testing.assert_close(
            xcorr.filter2d(image, kernel, algo=algo).float(), expected[0, 0], rtol=2e-3, atol=0.5
        )
    else:
        with pytest.raises(ValueError, match=f"algo='{algo}' cannot compute input 1x1x8x8, kernel 1x1x3x3") as info:
            xcorr.filter2d(image, kernel, algo=algo)
        assert info.type is xcorr.UnsupportedError and reason in str(info.value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a second device (CUDA)")
def test_inputs_on_different_devices() -> None:
    with pytest.raises(ValueError, match="image is on cuda:0 but kernel is on cpu"):
        xcorr.filter2d(torch.ones(4, 4, device="cuda"), torch.ones(2, 2))


def test_device_mismatch_is_detected_on_meta_tensors() -> None:
    """The same check without a GPU: a 'meta' kernel is on another device than a CPU image."""
    with pytest.raises(ValueError, match="image is on cpu but kernel is on meta; move both to one device"):
        xcorr.filter2d(torch.ones(4, 4), torch.ones(2, 2, device="meta"))


@pytest.mark.parametrize(
    ("torch_style", "plain"),
    [
        ({"stride": (2,)}, {"stride": 2}),
        ({"padding": (1,)}, {"padding": 1}),
        ({"dilation": [2]}, {"dilation": 2}),
        ({"stride": np.int64(2), "padding": np.int32(1)}, {"stride": 2, "padding": 1}),
        ({"stride": (np.int64(1), np.int64(2))}, {"stride": (1, 2)}),
        ({"groups": np.int64(1)}, {"groups": 1}),
    ],
)
def test_arguments_torch_accepts_are_accepted(torch_style: dict, plain: dict) -> None:
    """One-element sequences and NumPy integers, as torch's convolutions take them (PyTorch's OpInfo samples)."""
    x, w = torch.randn(1, 2, 9, 9, dtype=torch.float64), torch.randn(3, 2, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(xcorr.conv2d(x, w, **torch_style), torch.nn.functional.conv2d(x, w, **plain))


@pytest.mark.parametrize("cval", [1j, [1, 2], None, "0", True])
def test_a_bad_cval_is_named(cval: object) -> None:
    with pytest.raises(TypeError, match="cval must be a real number"):
        xcorr.filter2d(IMAGE, KERNEL, boundary="constant", cval=cval)


@pytest.mark.parametrize("cval", [np.array([2.5]), torch.tensor(2.5), np.float32(2.5)])
def test_a_one_element_cval_is_its_value(cval: object) -> None:
    expected = xcorr.filter2d(IMAGE, KERNEL, cval=2.5)
    np.testing.assert_array_equal(xcorr.filter2d(IMAGE, KERNEL, cval=cval), expected)


def test_a_scalar_image_is_called_0_d() -> None:
    with pytest.raises(ValueError, match=r"got 0-D"):
        xcorr.filter2d(np.float64(3.0), KERNEL)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"stride": 0}, "stride must be at least 1"),
        ({"padding": -1}, "padding must be at least 0"),
        ({"dilation": 0}, "dilation must be at least 1"),
        ({"padding": (1, 2, 3)}, "padding must be an int or a pair of ints"),
    ],
)
def test_the_first_wrong_argument_is_named_before_the_channels(settings: dict, message: str) -> None:
    """A wrong stride/padding/dilation together with a channel mismatch: named first, as torch does."""
    with pytest.raises((ValueError, TypeError), match=message):
        xcorr.conv2d(torch.ones(1, 3, 5, 5), W4, **settings)
