"""fit_kernel recovers kernels it did not see, against independent forward models (scipy)."""

import numpy as np
import pytest
import scipy.ndimage
import scipy.signal
import torch
from hypothesis import given
from hypothesis import strategies as st

import xcorr


def apply(x: np.ndarray, kernel: np.ndarray, bias: float = 0.0) -> np.ndarray:
    return scipy.signal.correlate2d(x, kernel, "valid") + bias


@given(h=st.integers(1, 5), w=st.integers(1, 5), seed=st.integers(0, 10_000))
def test_recovers_a_random_kernel_exactly(h: int, w: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, kernel = rng.standard_normal((24, 27)), rng.standard_normal((h, w))
    result = xcorr.fit_kernel(x, apply(x, kernel), (h, w))
    np.testing.assert_allclose(result.kernel, kernel, atol=1e-8)
    assert result.loss < 1e-12 and result.bias == 0.0


def test_recovers_kernel_and_bias_from_several_pairs() -> None:
    rng = np.random.default_rng(1)
    kernel = xcorr.kernels.sobel_x()
    xs = rng.standard_normal((3, 30, 31))
    ys = np.stack([apply(x, kernel, 0.25) for x in xs])
    result = xcorr.fit_kernel(xs, ys, 3, bias=True)
    np.testing.assert_allclose(result.kernel, kernel, atol=1e-9)
    assert result.bias == pytest.approx(0.25, abs=1e-9)


def test_noise_gives_a_close_kernel_and_the_residual_as_loss() -> None:
    rng = np.random.default_rng(2)
    x, kernel = rng.standard_normal((120, 130)), xcorr.kernels.gaussian(5, 1.0)
    y = apply(x, kernel) + 0.01 * rng.standard_normal((116, 126))
    result = xcorr.fit_kernel(x, y, 5)
    np.testing.assert_allclose(result.kernel, kernel, atol=3e-3)
    residual = apply(x, result.kernel) - y
    assert result.loss == pytest.approx(float((residual**2).sum()), rel=1e-9)
    assert result.loss == pytest.approx(0.01**2 * y.size, rel=0.1)


def test_ridge_shrinks_the_kernel() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((20, 20))
    y = apply(x, xcorr.kernels.laplacian())
    plain = xcorr.fit_kernel(x, y, 3).kernel
    shrunk = xcorr.fit_kernel(x, y, 3, ridge=50.0).kernel
    assert np.linalg.norm(shrunk) < np.linalg.norm(plain)
    # closed form of the ridge problem, from an explicit im2col matrix
    a = np.stack([x[i : i + 18, j : j + 18].ravel() for i in range(3) for j in range(3)], 1)
    expected = np.linalg.solve(a.T @ a + 50.0 * np.eye(9), a.T @ y.ravel()).reshape(3, 3)
    np.testing.assert_allclose(shrunk, expected, atol=1e-10)


def test_rank_deficient_input_gives_the_minimum_norm_kernel() -> None:
    x = np.ones((10, 10))  # every window is the same: only the kernel's sum is determined
    result = xcorr.fit_kernel(x, np.full((9, 9), 4.0), 2)
    np.testing.assert_allclose(result.kernel, np.ones((2, 2)), atol=1e-10)


def test_torch_inputs_give_a_torch_kernel_of_their_dtype() -> None:
    x = torch.randn(16, 16)
    y = torch.nn.functional.conv2d(x[None, None], torch.tensor([[[[-1.0, 1.0]]]]))[0, 0]
    result = xcorr.fit_kernel(x, y, (1, 2))
    assert isinstance(result.kernel, torch.Tensor) and result.kernel.dtype == torch.float32
    torch.testing.assert_close(result.kernel, torch.tensor([[-1.0, 1.0]]), atol=1e-5, rtol=0)


def test_gradient_descent_is_the_notebooks_loop() -> None:
    x = torch.ones(6, 8)
    x[:, 2:6] = 0
    y = torch.nn.functional.conv2d(x[None, None], torch.tensor([[[[-1.0, 1.0]]]]))[0, 0]
    torch.manual_seed(5)
    seen: list[tuple[int, float]] = []
    result = xcorr.fit_kernel(x, y, (1, 2), method="gd", lr=3e-2, steps=10, callback=lambda s, l: seen.append((s, l)))

    torch.manual_seed(5)
    conv2d = torch.nn.LazyConv2d(1, kernel_size=(1, 2), bias=False)
    losses = []
    for _ in range(10):
        l = (conv2d(x.reshape(1, 1, 6, 8)) - y.reshape(1, 1, 6, 7)) ** 2
        conv2d.zero_grad()
        l.sum().backward()
        conv2d.weight.data[:] -= 3e-2 * conv2d.weight.grad
        losses.append(l.sum().item())
    assert result.history == pytest.approx(losses, rel=1e-5)
    assert [s for s, _ in seen] == list(range(1, 11)) and [l for _, l in seen] == result.history
    torch.testing.assert_close(result.kernel, conv2d.weight.data[0, 0], rtol=1e-5, atol=1e-6)


def test_megapixel_images_fit_through_correlations() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1024, 1024)).astype(np.float32)
    kernel = rng.standard_normal((5, 5)).astype(np.float32)
    y = xcorr.filter2d(x, kernel, mode="valid")
    np.testing.assert_allclose(xcorr.fit_kernel(x, y, 5).kernel, kernel, atol=1e-4)


@given(h=st.integers(1, 6), w=st.integers(1, 6), seed=st.integers(0, 10_000))
def test_same_size_outputs_of_scipy_ndimage_and_signal_come_back_exactly(h: int, w: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, kernel = rng.standard_normal((26, 29)), rng.standard_normal((h, w))
    by_ndimage = scipy.ndimage.correlate(x, kernel, mode="reflect")  # anchored at (h // 2, w // 2)
    by_signal = scipy.signal.correlate2d(x, kernel, mode="same")  # anchored at ((h - 1) // 2, (w - 1) // 2)
    for y, anchor in ((by_ndimage, (h // 2, w // 2)), (by_signal, ((h - 1) // 2, (w - 1) // 2))):
        result = xcorr.fit_kernel(x, y, (h, w))
        np.testing.assert_allclose(result.kernel, kernel, atol=1e-8)
        assert result.anchor == anchor
        named = xcorr.fit_kernel(x, y, (h, w), anchor="center" if y is by_ndimage else "scipy")
        np.testing.assert_allclose(named.kernel, kernel, atol=1e-8)


def test_an_explicit_anchor_and_bad_anchors() -> None:
    rng = np.random.default_rng(5)
    x, kernel = rng.standard_normal((20, 22)), rng.standard_normal((4, 4))
    padded = np.pad(x, ((3, 0), (0, 3)))  # output pixel (i, j) sees taps anchored at (3, 0)
    y = scipy.signal.correlate2d(padded, kernel, "valid")
    result = xcorr.fit_kernel(x, y, 4, anchor=(3, 0))
    np.testing.assert_allclose(result.kernel, kernel, atol=1e-8)
    assert result.anchor == (3, 0)
    assert xcorr.fit_kernel(x, scipy.signal.correlate2d(x, kernel, "valid"), 4).anchor is None
    with pytest.raises(ValueError, match="anchor"):
        xcorr.fit_kernel(x, y, 4, anchor=(4, 0))
    with pytest.raises(ValueError, match="anchor must be one of"):
        xcorr.fit_kernel(x, y, 4, anchor="middle")


def test_gd_with_a_same_size_output_descends_on_the_best_anchor() -> None:
    rng = np.random.default_rng(6)
    x = rng.standard_normal((30, 30))
    y = scipy.ndimage.correlate(x, np.array([[-1.0, 1.0]]), mode="nearest")
    result = xcorr.fit_kernel(x, y, (1, 2), method="gd", lr=5e-4, steps=300)
    assert result.anchor == (0, 1)
    np.testing.assert_allclose(result.kernel, [[-1.0, 1.0]], atol=1e-3)


@given(
    kernel=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    extra=st.tuples(st.integers(0, 8), st.integers(0, 8)),
    pairs=st.integers(1, 3),
    bias=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_normal_equations_equal_an_explicit_least_squares(
    kernel: tuple[int, int], extra: tuple[int, int], pairs: int, bias: bool, seed: int
) -> None:
    """Images from exactly the kernel's size up (windows narrower than the kernel included) against NumPy's lstsq on
    the explicit window matrix, with noise so the fit is not exact."""
    rng = np.random.default_rng(seed)
    (h, w), (dh, dw) = kernel, extra
    x = rng.standard_normal((pairs, h + dh, w + dw))
    y = rng.standard_normal((pairs, dh + 1, dw + 1))
    columns = [x[:, i : i + dh + 1, j : j + dw + 1].ravel() for i in range(h) for j in range(w)]
    if bias:
        columns.append(np.ones(y.size))
    design = np.stack(columns, 1)
    solution = np.linalg.lstsq(design, y.ravel(), rcond=None)[0]
    result = xcorr.fit_kernel(x, y, (h, w), bias=bias)
    residual = design @ solution - y.ravel()
    assert result.loss == pytest.approx(float(residual @ residual), rel=1e-6, abs=1e-9)
    if np.linalg.matrix_rank(design) == design.shape[1] and np.linalg.cond(design) < 1e6:
        np.testing.assert_allclose(result.kernel, solution[: h * w].reshape(h, w), atol=1e-6)
