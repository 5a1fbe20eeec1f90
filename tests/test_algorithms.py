"""Every registered algorithm against an independent float64 reference: values, gradients, refusals.

Parametrised over ``xcorr.algorithms()``: a newly registered algorithm is tested here without a new test.
"""

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.signal
import torch
from hypothesis import given
from hypothesis import strategies as st

import xcorr
from tests.naive import naive_correlate
from xcorr.algo import get_algorithm
from xcorr.autograd import correlate, problem_for

ALGORITHMS = xcorr.algorithms()


@dataclass(frozen=True)
class Case:
    n: int
    groups: int
    in_per_group: int
    out_per_group: int
    size: tuple[int, int]
    kernel: tuple[int, int]
    rank: int
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]
    dilation: tuple[int, int]

    def tensors(self, dtype: torch.dtype, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Input and a weight whose (o, c) slices have rank at most ``rank`` (so low-rank paths get exercised)."""
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(self.n, self.groups * self.in_per_group, *self.size, generator=g, dtype=dtype)
        slices = (self.groups * self.out_per_group, self.in_per_group)
        cols = torch.randn(*slices, self.kernel[0], self.rank, generator=g, dtype=dtype)
        rows = torch.randn(*slices, self.rank, self.kernel[1], generator=g, dtype=dtype)
        return x, cols @ rows

    def run(self, x: torch.Tensor, w: torch.Tensor, algo: str) -> torch.Tensor:
        return correlate(
            x, w, stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups, algo=algo
        )

    def reference(self, x: torch.Tensor, w: torch.Tensor) -> np.ndarray:
        return naive_correlate(
            x.double().numpy(), w.double().numpy(), self.stride, self.padding, self.dilation, self.groups
        )


@st.composite
def cases(draw: st.DrawFn, max_kernel: int = 7) -> Case:
    kernel = (draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = tuple(draw(st.integers(0, 4)) for _ in range(4))
    extent = (dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)
    size = tuple(
        draw(st.integers(max(1, extent[a] - padding[2 * a] - padding[2 * a + 1]), extent[a] + 14)) for a in (0, 1)
    )
    return Case(
        n=draw(st.integers(1, 2)),
        groups=draw(st.sampled_from([1, 1, 2, 3])),
        in_per_group=draw(st.integers(1, 3)),
        out_per_group=draw(st.integers(1, 2)),
        size=(size[0], size[1]),
        kernel=kernel,
        rank=draw(st.integers(1, min(kernel))),
        stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        padding=(padding[0], padding[1], padding[2], padding[3]),
        dilation=dilation,
    )


def error_bound(case: Case, x: torch.Tensor, w: torch.Tensor, exact: bool, eps: float) -> np.ndarray:
    """Rounding error allowed per output: relative to the sum of |products| for a direct sum, and absolute
    (eps * max|x| * sum|w|, times a log factor) for transform-based algorithms."""
    magnitude = case.reference(x.abs(), w.abs())
    if exact:
        return 16 * eps * (magnitude + 1e-30) * (case.kernel[0] * case.kernel[1] * case.in_per_group) ** 0.5
    scale = float(x.abs().max()) * w.abs().sum(dim=(1, 2, 3)).double().numpy()[None, :, None, None]
    return 64 * eps * (scale + 1e-30) * np.log2(4 + max(case.size) + max(case.kernel))


def check_or_refuses(case: Case, algo: str, dtype: torch.dtype, seed: int) -> None:
    x, w = case.tensors(dtype, seed)
    algorithm = get_algorithm(algo)
    problem = problem_for(x, w, stride=case.stride, padding=case.padding, dilation=case.dilation, groups=case.groups)
    if algorithm.unsupported(problem) is not None:
        with pytest.raises(xcorr.UnsupportedError, match=f"algo='{algo}' cannot compute"):
            case.run(x, w, algo)
        return
    y = case.run(x, w, algo)
    assert y.dtype == dtype
    expected = case.reference(x, w)
    assert y.shape == expected.shape
    bound = error_bound(case, x, w, algorithm.exact, torch.finfo(dtype).eps)
    error = np.abs(y.double().numpy() - expected)
    worst = np.unravel_index(np.argmax(error - bound), error.shape)
    assert np.all(error <= bound), f"error {error[worst]:.3g} > bound {np.broadcast_to(bound, error.shape)[worst]:.3g}"


@pytest.mark.parametrize("algo", ALGORITHMS)
@given(case=cases(), seed=st.integers(0, 2**16))
def test_float64_matches_naive_loop(algo: str, case: Case, seed: int) -> None:
    check_or_refuses(case, algo, torch.float64, seed)


@pytest.mark.parametrize("algo", ALGORITHMS)
@given(case=cases(), seed=st.integers(0, 2**16))
def test_float32_matches_naive_loop(algo: str, case: Case, seed: int) -> None:
    check_or_refuses(case, algo, torch.float32, seed)


@pytest.mark.parametrize("algo", ALGORITHMS)
@given(size=st.integers(40, 90), k=st.integers(9, 33), seed=st.integers(0, 2**16))
def test_large_kernels_single_channel(algo: str, size: int, k: int, seed: int) -> None:
    """The shapes image filtering lives on: one channel, kernel up to 33, 'same' padding."""
    case = Case(1, 1, 1, 1, (size, size + 3), (k, k - 2), 1 + seed % 2, (1, 1), ((k - 1) // 2, k // 2, 3, 4), (1, 1))
    check_or_refuses(case, algo, torch.float32, seed)


# Shapes that once broke an algorithm, kept so they stay fixed (opt_einsum's habit).
ONCE_FAILED = [
    Case(1, 1, 1, 1, (1, 1), (1, 1), 1, (1, 1), (0, 0, 0, 0), (1, 1)),
    Case(2, 3, 1, 2, (5, 4), (3, 3), 2, (2, 3), (4, 0, 0, 4), (2, 1)),
    Case(1, 1, 1, 1, (3, 40), (3, 3), 1, (1, 1), (1, 1, 1, 1), (1, 1)),
]


@pytest.mark.parametrize("algo", ALGORITHMS)
@pytest.mark.parametrize("case", ONCE_FAILED)
def test_cases_that_once_failed(algo: str, case: Case) -> None:
    check_or_refuses(case, algo, torch.float64, 0)


GRADCHECK_CASES = [
    Case(2, 1, 1, 1, (7, 8), (3, 3), 1, (1, 1), (1, 1, 1, 1), (1, 1)),  # single-channel image filter
    Case(2, 3, 1, 1, (6, 7), (3, 2), 2, (1, 1), (1, 0, 1, 1), (1, 1)),  # depthwise
    Case(1, 2, 2, 2, (9, 8), (3, 3), 3, (2, 1), (1, 2, 0, 1), (1, 2)),  # grouped, strided, dilated
    Case(1, 1, 1, 1, (12, 12), (5, 5), 1, (1, 1), (2, 2, 2, 2), (1, 1)),  # rank-1 kernel
]


def needs_low_rank(algo: str, case: Case) -> bool:
    """Whether ``algo`` supports ``case`` only because of its weight's rank: perturbing the weight (as gradcheck
    does) can then take the case away from it, so only the input and bias are perturbed."""
    x, w = case.tensors(torch.float64, 0)
    problem = problem_for(x, w, stride=case.stride, padding=case.padding, dilation=case.dilation, groups=case.groups)
    return get_algorithm(algo).unsupported(dataclasses.replace(problem, weight_rank=None)) is not None


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_gradcheck(algo: str) -> None:
    """float64 gradients for input, weight and bias, with the forced algorithm running every product it can."""
    supported = []
    for case in GRADCHECK_CASES:
        x, w = case.tensors(torch.float64, 1)
        problem = problem_for(
            x, w, stride=case.stride, padding=case.padding, dilation=case.dilation, groups=case.groups
        )
        if get_algorithm(algo).unsupported(problem) is None:
            supported.append((case, x, w))
    assert supported, f"{algo} supports none of the gradcheck cases; add one it supports"
    for case, x, w in supported:
        bias = torch.randn(w.shape[0], dtype=torch.float64)
        x, w, bias = (t.clone().requires_grad_() for t in (x, w, bias))
        w.requires_grad_(not needs_low_rank(algo, case))

        def layer(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, case: Case = case) -> torch.Tensor:
            return case.run(x, w, algo) + b.view(1, -1, 1, 1)

        assert torch.autograd.gradcheck(layer, (x, w, bias))


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_gradients_match_torch_autograd(algo: str) -> None:
    """Backward products against torch's own conv2d backward on a larger depthwise problem."""
    case = Case(2, 4, 1, 1, (20, 23), (5, 5), 1, (1, 1), (2, 2, 2, 2), (1, 1))
    x, w = (t.requires_grad_() for t in case.tensors(torch.float64, 3))
    problem = problem_for(x, w, stride=case.stride, padding=case.padding, dilation=case.dilation, groups=case.groups)
    if get_algorithm(algo).unsupported(problem) is not None:
        pytest.skip(f"{algo} does not run depthwise 5x5: {get_algorithm(algo).unsupported(problem)}")
    dy = torch.randn(case.run(x, w, "reference").shape, dtype=torch.float64)
    ours = torch.autograd.grad(case.run(x, w, algo), (x, w), dy)
    torchs = torch.autograd.grad(torch.nn.functional.conv2d(x, w, padding=2, groups=4), (x, w), dy)
    for mine, theirs in zip(ours, torchs, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_second_derivatives(algo: str) -> None:
    """Backward products run through the engine again, so gradgradcheck holds."""
    case = GRADCHECK_CASES[0]
    x, w = (t.requires_grad_() for t in case.tensors(torch.float64, 2))
    problem = problem_for(x, w, stride=case.stride, padding=case.padding, dilation=case.dilation, groups=case.groups)
    if get_algorithm(algo).unsupported(problem) is not None:
        pytest.skip(f"{algo} does not run a 3x3 single-channel filter")
    w.requires_grad_(not needs_low_rank(algo, case))
    assert torch.autograd.gradgradcheck(lambda a, b: case.run(a, b, algo), (x, w))


BOUNDARIES = ["constant", "reflect", "symmetric", "edge", "wrap"]


@pytest.mark.parametrize("algo", ALGORITHMS)
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("size", [(9, 11), (515, 520)])  # the padded copy, and the border bands
def test_integer_images_in_every_boundary(algo: str, boundary: str, size: tuple[int, int]) -> None:
    """uint8 channels-last input, every boundary, each algorithm forced: numpy.pad then SciPy in float64, within
    the algorithm's float32 error bound (as above: relative to the sum of |products|, or absolute for transforms)."""
    rng = np.random.default_rng(size[0])
    image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    kernel = rng.integers(-2, 3, (3, 4)).astype(np.float32)
    algorithm = get_algorithm(algo)
    x, w = torch.zeros(1, 1, size[0], 3 * size[1]), torch.zeros(1, 1, 3, 4)
    dilated = problem_for(x, w, stride=(1, 1), padding=(1, 1, 3, 6), dilation=(1, 3), groups=1)
    if algorithm.unsupported(dilated) is not None:
        with pytest.raises(xcorr.UnsupportedError, match=f"algo='{algo}' cannot compute"):
            xcorr.filter2d(image, kernel, boundary=boundary, channel_axis=-1, algo=algo)
        return
    result = xcorr.filter2d(image, kernel, boundary=boundary, cval=7.0, channel_axis=-1, algo=algo)
    extra = {"constant_values": 7.0} if boundary == "constant" else {}
    eps = float(torch.finfo(torch.float32).eps)
    for channel in range(3):
        padded = np.pad(image[..., channel].astype(np.float64), ((1, 1), (1, 2)), mode=boundary, **extra)
        expected = scipy.signal.correlate2d(padded, kernel.astype(np.float64), "valid")
        if algorithm.exact:
            bound = 16 * eps * scipy.signal.correlate2d(padded, np.abs(kernel), "valid") * 12**0.5
        else:
            bound = 64 * eps * 255 * np.abs(kernel).sum() * np.log2(4 + max(size) + 4)
        assert np.all(np.abs(result[..., channel] - expected) <= bound + 1e-12)
