"""The separable algorithm: 1-D passes equal the full 2-D correlation for rank-1 kernels, refusals otherwise."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from xcorr.algo import separable
from xcorr.lowrank import weight_rank
from xcorr.problem import Problem


def shape4(t: torch.Tensor) -> tuple[int, int, int, int]:
    n, c, h, w = t.shape
    return n, c, h, w


def full_correlation(x: torch.Tensor, w: torch.Tensor, problem: Problem) -> tuple[torch.Tensor, torch.Tensor]:
    """torch's float64 conv2d with the full 2-D kernel, and the same with |x| and |w| (the error scale)."""
    top, bottom, left, right = problem.padding
    xp = F.pad(x.double(), (left, right, top, bottom))
    args = (None, problem.stride, 0, problem.dilation, problem.groups)
    return F.conv2d(xp, w.double(), *args), F.conv2d(xp.abs(), w.double().abs(), *args)


@settings(max_examples=40, deadline=None)
@given(
    size=st.tuples(st.integers(5, 40), st.sampled_from([23, 64, 300])),
    kernel=st.tuples(st.integers(2, 17), st.integers(2, 17)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    padding=st.tuples(*[st.integers(0, 9)] * 4),
    channels=st.sampled_from([(1, 1, 1), (3, 3, 3), (2, 2, 1), (4, 2, 2)]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    seed=st.integers(0, 2**16),
)
def test_rank_one_kernels_match_the_full_correlation(
    size: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    padding: tuple[int, int, int, int],
    channels: tuple[int, int, int],
    dtype: torch.dtype,
    seed: int,
) -> None:
    """Outer-product kernels, given as full 2-D kernels: the error of a direct sum, relative to |x| * |w|."""
    c, o, groups = channels
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, c, *size, generator=g, dtype=dtype)
    w = torch.randn(o, c // groups, kernel[0], 1, generator=g, dtype=dtype) * torch.randn(
        o, c // groups, 1, kernel[1], generator=g, dtype=dtype
    )
    problem = Problem(shape4(x), shape4(w), stride, padding, dilation, groups, dtype, weight_rank=weight_rank(w))
    assume(min(problem.output_shape[2:]) > 0 and separable.unsupported(problem) is None)
    y = separable.run(x, w, problem)
    expected, magnitude = full_correlation(x, w, problem)
    bound = 4 * (kernel[0] + kernel[1]) * (c // groups) * torch.finfo(dtype).eps * magnitude
    assert y.shape == expected.shape and y.dtype == dtype
    assert torch.all((y.double() - expected).abs() <= bound + 1e-300)


@pytest.mark.parametrize(
    ("kernel", "stride", "dilation", "channels", "height"),
    [
        ((7, 7), (1, 1), (1, 1), (1, 1, 1), 40),  # seven horizontal taps padded to one sweep of eight
        ((5, 9), (1, 2), (1, 2), (2, 4, 1), 30),  # nine taps: two sweeps; strided, dilated columns; two channels
        ((7, 3), (1, 1), (1, 1), (3, 3, 3), 3),  # an image shorter than the kernel: every block reads zero rows
    ],
)
@pytest.mark.parametrize("threads", [1, 3])
def test_four_row_vertical_passes_match_the_full_correlation(
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    channels: tuple[int, int, int],
    height: int,
    threads: int,
) -> None:
    """Columns of 5 or 7 taps with stride-1 rows: blocks of four rows, the last one partial; several channels."""
    c, o, groups = channels
    g = torch.Generator().manual_seed(kernel[0] + threads)
    x = torch.randn(2, c, height, 301, generator=g)
    w = torch.randn(o, c // groups, kernel[0], 1, generator=g) * torch.randn(o, c // groups, 1, kernel[1], generator=g)
    problem = Problem(shape4(x), shape4(w), stride, (3, 4, 2, 5), dilation, groups, weight_rank=weight_rank(w))
    assert separable._four_rows(problem) and separable.unsupported(problem) is None
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        y = separable.run(x, w, problem)
    finally:
        torch.set_num_threads(previous)
    expected, magnitude = full_correlation(x, w, problem)
    bound = 8 * (kernel[0] + kernel[1]) * (c // groups) * torch.finfo(torch.float32).eps * magnitude
    assert y.shape == expected.shape
    assert torch.all((y.double() - expected).abs() <= bound + 1e-30)


def test_four_row_vertical_passes_put_nan_and_inf_where_a_direct_sum_does() -> None:
    x = torch.randn(1, 1, 30, 300, dtype=torch.float64)
    x[0, 0, 12, 40], x[0, 0, 2, 299] = float("inf"), float("nan")
    w = torch.outer(torch.rand(7, dtype=torch.float64) + 0.1, torch.rand(7, dtype=torch.float64) + 0.1)[None, None]
    problem = Problem((1, 1, 30, 300), (1, 1, 7, 7), padding=(3, 3, 3, 3), dtype=torch.float64, weight_rank=1)
    y = separable.run(x, w, problem)
    expected, _ = full_correlation(x, w, problem)
    assert torch.equal(y.isnan(), expected.isnan()) and torch.equal(y.isinf(), expected.isinf())
    finite = expected.isfinite()
    torch.testing.assert_close(y[finite], expected[finite])


def test_gaussian_tails_keep_their_relative_accuracy() -> None:
    """Outputs fed only by the tiny tail of a Gaussian are as accurate as the tail values themselves."""
    g = torch.exp(-((torch.arange(31.0) - 15) ** 2) / 8)
    w = torch.outer(g, g)[None, None]
    x = torch.zeros(1, 1, 64, 64)
    x[0, 0, 0, 0] = 1.0  # a lone impulse in the corner: the output far from it is w's tail entries
    problem = Problem((1, 1, 64, 64), (1, 1, 31, 31), padding=(15, 15, 15, 15), weight_rank=weight_rank(w))
    y = separable.run(x, w, problem)[0, 0, :16, :16].double()
    tail = w[0, 0, 15:, 15:].double()
    assert torch.all((y - tail).abs() <= 8 * torch.finfo(torch.float32).eps * tail)


@pytest.mark.parametrize(
    ("problem", "reason"),
    [
        (Problem((1, 1, 8, 8), (1, 1, 5, 5)), "rank is unknown"),
        (Problem((1, 1, 8, 8), (1, 1, 3, 3), weight_rank=2), "no fewer than its 9 2-D taps"),
        (Problem((1, 1, 8, 8), (1, 1, 5, 5), weight_rank=0), "all zeros"),
        (Problem((1, 1, 8, 8), (1, 1, 5, 5), dtype=torch.float16, weight_rank=1), "not float16"),
        (Problem((1, 1, 8, 8), (1, 1, 5, 5), device="cuda", weight_rank=1), "CPU tensors only"),
    ],
)
def test_refuses_with_a_reason(problem: Problem, reason: str) -> None:
    assert reason in (separable.unsupported(problem) or "")
