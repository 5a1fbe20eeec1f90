"""The direct algorithm's own paths: wide rows (read in place, border strips), narrow rows (blocks), wide kernels
on narrow outputs (dot products)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import xcorr
from xcorr import gradients
from xcorr.algo import direct, dots, fourrows
from xcorr.problem import Problem


def shape4(t: torch.Tensor) -> tuple[int, int, int, int]:
    n, c, h, w = t.shape
    return n, c, h, w


def assert_matches_conv2d(y: torch.Tensor, x: torch.Tensor, w: torch.Tensor, problem: Problem) -> None:
    """Against torch's float64 conv2d, with the error bound of a direct sum: taps * eps * (|x| * |w|)."""
    top, bottom, left, right = problem.padding
    xp = F.pad(x.double(), (left, right, top, bottom))
    args = (None, problem.stride, 0, problem.dilation, problem.groups)
    expected = F.conv2d(xp, w.double(), *args)
    magnitude = F.conv2d(xp.abs(), w.double().abs(), *args)
    taps = w.shape[1] * w.shape[2] * w.shape[3]
    assert y.shape == expected.shape and y.dtype == x.dtype
    assert torch.all((y.double() - expected).abs() <= 2 * taps * torch.finfo(x.dtype).eps * magnitude + 1e-300)


def run_on_threads(x: torch.Tensor, w: torch.Tensor, problem: Problem, threads: int) -> torch.Tensor:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return direct.run(x, w, problem)
    finally:
        torch.set_num_threads(previous)


@settings(max_examples=40, deadline=None)
@given(
    width=st.integers(250, 600),
    kernel=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    padding=st.tuples(*[st.integers(0, 12)] * 4),
    channels=st.sampled_from([(1, 1, 1), (3, 3, 3), (4, 2, 2), (2, 4, 1)]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    seed=st.integers(0, 2**16),
)
def test_wide_rows_match_conv2d(
    width: int,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    padding: tuple[int, int, int, int],
    channels: tuple[int, int, int],
    dtype: torch.dtype,
    seed: int,
) -> None:
    """Rows of 250+ columns take the row path: interior read in place, padded borders through the strips."""
    c, o, groups = channels
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, c, 9, width, generator=g, dtype=dtype)
    w = torch.randn(o, c // groups, *kernel, generator=g, dtype=dtype)
    problem = Problem(shape4(x), shape4(w), stride, padding, dilation, groups, dtype)
    assume(min(problem.output_shape[2:]) > 0)
    assert_matches_conv2d(direct.run(x, w, problem), x, w, problem)


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "expected"),
    [
        ((1, 1, 5, 2), (1, 1, 3, 3), (1, 1, 3, 0)),  # no output columns
        ((1, 1, 2, 5), (1, 1, 3, 3), (1, 1, 0, 3)),  # no output rows
        ((0, 1, 5, 5), (1, 1, 3, 3), (0, 1, 3, 3)),  # no images
        ((1, 1, 5, 5), (0, 1, 3, 3), (1, 0, 3, 3)),  # no output channels
    ],
)
def test_empty_outputs_are_empty_results(
    x_shape: tuple[int, int, int, int], w_shape: tuple[int, int, int, int], expected: tuple[int, int, int, int]
) -> None:
    """An output with no rows, columns, images or channels: an empty result of that shape, no error."""
    x, w = torch.randn(x_shape), torch.randn(w_shape)
    y = direct.run(x, w, Problem(x_shape, w_shape))
    assert y.shape == expected and y.dtype == x.dtype


@pytest.mark.parametrize(
    ("kernel", "dilation", "channels"),
    [
        ((3, 3), (1, 1), (1, 1, 1)),  # the 3x3 sweep
        ((3, 3), (1, 1), (2, 2, 1)),  # 3x3 over two channels: the one-row sweeps
        ((3, 3), (1, 3), (1, 1, 1)),  # the 3x3 sweep with dilated columns (channels-last pixels)
        ((7, 7), (1, 1), (1, 1, 1)),  # 7-row columns
        ((17, 2), (1, 1), (1, 1, 1)),  # a group of seven rows and two of five
        ((7, 4), (1, 3), (3, 3, 3)),  # even width, dilated columns, depthwise
        ((14, 3), (1, 1), (2, 4, 1)),  # two groups of seven rows over two channels
        ((5, 5), (1, 1), (1, 1, 1)),  # five-row columns
        ((12, 2), (1, 2), (3, 3, 3)),  # a group of seven rows and one of five
        ((9, 4), (1, 1), (1, 1, 1)),  # a group of five rows and one of four
        ((11, 3), (1, 3), (2, 2, 1)),  # seven and four rows, dilated columns, two channels
        ((6, 4), (1, 1), (1, 1, 1)),  # no groups make six rows: the one-row sweeps
    ],
)
@pytest.mark.parametrize(("short", "threads"), [(False, 1), (False, 3), (True, 2)])
def test_four_row_sweeps_match_conv2d(
    kernel: tuple[int, int], dilation: tuple[int, int], channels: tuple[int, int, int], short: bool, threads: int
) -> None:
    """Wide stride-1 rows run four at a time: in place inside the image, from a window of rows between zeros at
    the top and bottom (or everywhere, in an image shorter than the kernel), a last partial block via scratch."""
    c, o, groups = channels
    g = torch.Generator().manual_seed(kernel[0] * 100 + threads)
    height = max(1, kernel[0] - 5) if short else 41  # short: every block reads padding rows
    x = torch.randn(2, c, height, 300, generator=g)
    w = torch.randn(o, c // groups, *kernel, generator=g)
    problem = Problem(shape4(x), shape4(w), padding=(3, 2, 4, 1), dilation=dilation, groups=groups)
    assert_matches_conv2d(run_on_threads(x, w, problem, threads), x, w, problem)


@pytest.mark.parametrize(("kernel", "dilation"), [((5, 5), (1, 1)), ((9, 4), (1, 1)), ((7, 7), (1, 3))])
def test_four_row_sweeps_over_several_column_tiles(kernel: tuple[int, int], dilation: tuple[int, int]) -> None:
    """Rows wider than a tile are swept tile by tile: the seams between tiles, a last partial tile, the borders."""
    g = torch.Generator().manual_seed(kernel[0])
    x = torch.randn(1, 1, 9, 2 * fourrows.TILE_COLUMNS + 517, generator=g)
    w = torch.randn(1, 1, *kernel, generator=g)
    problem = Problem(shape4(x), shape4(w), padding=(2, 3, 5, 4), dilation=dilation)
    assert direct.work(problem)[0] == "four rows"
    assert_matches_conv2d(run_on_threads(x, w, problem, 2), x, w, problem)


@pytest.mark.parametrize("kernel", [(3, 3), (5, 5), (7, 7)])
def test_four_row_sweeps_put_nan_and_inf_where_a_direct_sum_does(kernel: tuple[int, int]) -> None:
    x = torch.randn(1, 1, 40, 300, dtype=torch.float64)
    x[0, 0, 20, 100], x[0, 0, 5, 7] = float("inf"), float("nan")
    w = torch.rand(1, 1, *kernel, dtype=torch.float64) + 0.1
    problem = Problem(shape4(x), shape4(w), padding=(3, 3, 3, 3), dtype=torch.float64)
    y = direct.run(x, w, problem)
    expected = F.conv2d(F.pad(x, (3, 3, 3, 3)), w)
    assert torch.equal(y.isnan(), expected.isnan()) and torch.equal(y.isinf(), expected.isinf())
    finite = expected.isfinite()
    torch.testing.assert_close(y[finite], expected[finite])


def test_output_lies_half_a_page_from_the_input() -> None:
    """Avoids 4K aliasing between output stores and input loads (see ``_empty_apart_from``)."""
    x = torch.randn(1, 1, 64, 1024)
    y = direct.run(x, torch.randn(1, 1, 3, 3), Problem(shape4(x), (1, 1, 3, 3), padding=(1, 1, 1, 1)))
    assert (y.data_ptr() - x.data_ptr()) % direct.PAGE_BYTES == direct.PAGE_BYTES // 2


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_depthwise_blocks_on_several_threads(threads: int) -> None:
    """Narrow stride-1 planes run in blocks of rows; tasks split across threads write disjoint rows."""
    g = torch.Generator().manual_seed(threads)
    x = torch.randn(3, 8, 70, 33, generator=g)
    w = torch.randn(8, 1, 7, 5, generator=g)
    problem = Problem(shape4(x), shape4(w), padding=(3, 3, 2, 2), groups=8)
    assert_matches_conv2d(run_on_threads(x, w, problem, threads), x, w, problem)


def test_block_mode_splits_tall_planes() -> None:
    """A plane taller than one block (BLOCK_ELEMENTS / padded width rows) is split without seams."""
    x = torch.randn(1, 1, 1000, 40, dtype=torch.float64)
    w = torch.randn(1, 1, 5, 3, dtype=torch.float64)
    problem = Problem(shape4(x), shape4(w), padding=(2, 2, 1, 1), dilation=(2, 1), dtype=torch.float64)
    assert_matches_conv2d(direct.run(x, w, problem), x, w, problem)


def test_padding_wider_than_the_image() -> None:
    x = torch.randn(1, 1, 3, 4)
    w = torch.randn(1, 1, 2, 2)
    problem = Problem(shape4(x), shape4(w), padding=(5, 6, 300, 301))
    assert_matches_conv2d(direct.run(x, w, problem), x, w, problem)


def test_non_contiguous_input() -> None:
    x = torch.randn(1, 2, 300, 280).transpose(2, 3)
    w = torch.randn(2, 1, 3, 3)
    problem = Problem(shape4(x), shape4(w), padding=(1, 1, 1, 1), groups=2)
    assert_matches_conv2d(direct.run(x, w, problem), x, w, problem)


@pytest.mark.parametrize(
    ("problem", "reason"),
    [
        (Problem((1, 1, 8, 8), (1, 1, 3, 3), dtype=torch.float16), "not float16"),
        (Problem((1, 1, 8, 8), (1, 1, 3, 3), dtype=torch.bfloat16), "not bfloat16"),
        (Problem((1, 1, 8, 8), (1, 1, 3, 3), device="cuda"), "CPU tensors only"),
    ],
)
def test_refuses_with_a_reason(problem: Problem, reason: str) -> None:
    assert reason in (direct.unsupported(problem) or "")


@pytest.mark.parametrize(
    ("problem", "expected"),
    [
        (Problem((1, 1, 64, 512), (1, 1, 3, 3), padding=(1, 1, 1, 1)), True),
        (Problem((1, 2, 64, 512), (1, 2, 3, 3)), False),  # 3x3 over two channels
        (Problem((1, 2, 64, 512), (4, 1, 12, 5), groups=2), True),  # 7 + 5 rows
        (Problem((1, 1, 64, 512), (1, 1, 9, 9)), True),  # 5 + 4 rows
        (Problem((1, 1, 64, 512), (1, 1, 6, 6)), False),  # no groups make six
        (Problem((1, 1, 64, 512), (1, 1, 4, 4)), False),  # a lone four: one row at a time
        (Problem((1, 1, 64, 512), (1, 1, 7, 7), stride=(1, 2)), False),
        (Problem((1, 1, 64, 512), (1, 1, 7, 7), dilation=(2, 1)), False),
        (Problem((1, 1, 64, 100), (1, 1, 7, 7)), False),  # narrow rows: the block path
    ],
)
def test_cost_model_knows_which_problems_sweep_four_rows(problem: Problem, expected: bool) -> None:
    assert (direct._mode(problem) == "four rows") is expected


@settings(max_examples=40, deadline=None)
@given(
    out_size=st.tuples(st.integers(1, 4), st.integers(1, 8)),
    kernel=st.tuples(st.integers(1, 12), st.integers(32, 100)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 3)),
    padding=st.tuples(*[st.integers(0, 5)] * 4),
    channels=st.sampled_from([(1, 1, 1), (3, 2, 1), (4, 4, 2), (3, 3, 3)]),
    boundary=st.sampled_from(["constant", "reflect", "symmetric", "edge", "wrap"]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    seed=st.integers(0, 2**16),
)
def test_wide_kernels_on_narrow_outputs_match_conv2d(
    out_size: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    padding: tuple[int, int, int, int],
    channels: tuple[int, int, int],
    boundary: str,
    dtype: torch.dtype,
    seed: int,
) -> None:
    """Weight-gradient shapes (a kernel nearly as wide as the image, a few output columns): one dot product per
    output pixel and kernel row, border columns through the boundary, against the padded float64 reference."""
    c, o, groups = channels
    top, bottom, left, right = padding
    size = tuple(
        (out - 1) * s + (k - 1) * d + 1 - before - after
        for out, s, k, d, before, after in zip(
            out_size, stride, kernel, dilation, (top, left), (bottom, right), strict=True
        )
    )
    assume(min(size) > max(padding) if boundary == "reflect" else min(size) > 0)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, c, *size, generator=g, dtype=dtype)
    w = torch.randn(o, c // groups, *kernel, generator=g, dtype=dtype)
    problem = Problem(shape4(x), shape4(w), stride, padding, dilation, groups, dtype)
    assume(dots.suits(problem))
    extended = torch.from_numpy(
        np.pad(x.double().numpy(), ((0, 0), (0, 0), (top, bottom), (left, right)), mode=boundary)
    )
    flat = Problem(shape4(extended), shape4(w), stride, (0, 0, 0, 0), dilation, groups, dtype)
    y = direct.run_extended(x, w, problem, boundary)
    assert_matches_conv2d(y, extended.to(dtype), w, flat)


def test_wide_kernels_put_nan_and_inf_where_a_direct_sum_does() -> None:
    x = torch.randn(1, 1, 20, 200, dtype=torch.float64)
    x[0, 0, 3, 50], x[0, 0, 12, 180] = float("inf"), float("nan")
    w = torch.rand(2, 1, 10, 190, dtype=torch.float64) + 0.1
    problem = Problem(shape4(x), shape4(w), padding=(1, 1, 2, 2), dtype=torch.float64)
    assert dots.suits(problem)
    y = direct.run(x, w, problem)
    expected = F.conv2d(F.pad(x, (2, 2, 1, 1)), w)
    assert torch.equal(y.isnan(), expected.isnan()) and torch.equal(y.isinf(), expected.isinf())
    finite = expected.isfinite()
    torch.testing.assert_close(y[finite], expected[finite])


def test_weight_gradients_through_the_dot_products_pass_gradcheck() -> None:
    """A layer on a 40x44 image: its weight gradient is a correlation with a 38x42 kernel and a 3x3 output."""
    x = torch.randn(2, 2, 40, 44, dtype=torch.float64)
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    weight_product = gradients.weight_gradient_problem(Problem(shape4(x), (3, 2, 3, 3), dtype=torch.float64))
    assert dots.suits(weight_product)
    assert torch.autograd.gradcheck(lambda w: xcorr.conv2d(x, w, algo="direct"), (w,))
