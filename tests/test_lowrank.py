"""Exact low-rank factors of kernels: ranks of the classic separable kernels, factors that reproduce them."""

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

import xcorr
from xcorr.lowrank import factors, weight_rank


def gaussian(size: int, sigma: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    g = torch.exp(-((torch.arange(size, dtype=torch.float64) - size // 2) ** 2) / (2 * sigma**2))
    return torch.outer(g, g).to(dtype)[None, None]


CLASSIC_RANK_ONE = {
    "sobel": torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])[None, None],
    "scharr": torch.tensor([[3.0, 10, 3], [0, 0, 0], [-3, -10, -3]])[None, None],
    "box": torch.full((1, 1, 5, 5), 1 / 25),
    "gaussian 31": gaussian(31, 5.0),
    "gaussian 63 float64": gaussian(63, 10.0, torch.float64),
    "normalised gaussian": gaussian(15, 2.0) / gaussian(15, 2.0).sum(),
}


@pytest.mark.parametrize("name", CLASSIC_RANK_ONE)
def test_classic_separable_kernels_have_rank_one(name: str) -> None:
    assert weight_rank(CLASSIC_RANK_ONE[name]) == 1


@pytest.mark.parametrize("name", CLASSIC_RANK_ONE)
def test_rank_one_factors_reproduce_every_entry(name: str) -> None:
    """Entry by entry, tails included: relative error of a few ulps of the kernel's dtype."""
    w = CLASSIC_RANK_ONE[name]
    cols, rows = factors(w, 1)
    product = (cols[0, 0, 0, :, None] * rows[0, 0, 0, None, :]).numpy()
    exact = w[0, 0].double().numpy()
    eps = torch.finfo(w.dtype).eps
    np.testing.assert_array_less(np.abs(product - exact), 4 * eps * np.abs(exact) + 1e-300)


def test_full_rank_kernels() -> None:
    assert weight_rank(torch.eye(3)[None, None]) == 3
    laplacian = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]])[None, None]
    assert weight_rank(laplacian) == 3
    assert weight_rank(torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(0))) == 5


def test_zero_kernel_has_rank_zero() -> None:
    assert weight_rank(torch.zeros(1, 1, 4, 4)) == 0


def test_worst_slice_decides() -> None:
    w = torch.cat([CLASSIC_RANK_ONE["box"], torch.eye(5)[None, None]], dim=1)
    assert weight_rank(w) == 5


@given(
    kh=st.integers(1, 9),
    kw=st.integers(1, 9),
    seed=st.integers(0, 2**16),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_outer_products_have_rank_one(kh: int, kw: int, seed: int, dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(seed)
    w = torch.outer(torch.randn(kh, generator=g, dtype=dtype), torch.randn(kw, generator=g, dtype=dtype))
    assert weight_rank(w[None, None]) == 1


@given(rank=st.integers(1, 3), seed=st.integers(0, 2**16), signed=st.booleans())
def test_the_reported_rank_reproduces_every_entry(rank: int, seed: int, signed: bool) -> None:
    """A reported rank below full: that many factors reproduce each entry to (kh + kw) ulps of itself."""
    g = torch.Generator().manual_seed(seed)
    cols = torch.rand(2, 1, 7, rank, generator=g, dtype=torch.float64) + 0.1
    rows = torch.rand(2, 1, rank, 6, generator=g, dtype=torch.float64) - (0.5 if signed else -0.1)
    w = cols @ rows
    r = weight_rank(w)
    assume(r < 6)
    got_cols, got_rows = factors(w, r)
    product = torch.einsum("ocki,ockj->ocij", got_cols, got_rows).numpy()
    np.testing.assert_array_less(np.abs(product - w.numpy()), 13 * 2.0**-52 * np.abs(w.numpy()) + 1e-300)


def test_factors_rejects_impossible_rank() -> None:
    with pytest.raises(ValueError, match="rank must be between 0 and min"):
        factors(torch.ones(1, 1, 3, 4), 4)


def test_a_weight_updated_in_place_is_planned_from_its_new_rank() -> None:
    """A rank-1 kernel plans the separable algorithm; the same tensor updated in place to a full-rank kernel must
    not run on the old factors (a low rank is found again after every update), and back to rank 1 it may again."""
    x = torch.randn(1, 1, 96, 96, dtype=torch.float64)
    g = torch.exp(-(torch.linspace(-2, 2, 15, dtype=torch.float64) ** 2))
    w = torch.outer(g, g)[None, None].clone()
    plan = xcorr.plan((1, 1, 96, 96), (1, 1, 15, 15), dtype=torch.float64, weight_rank=1)
    assert plan.forward.algorithm == "separable"
    for kernel in (torch.outer(g, g), torch.randn(15, 15, dtype=torch.float64), torch.outer(g, -g)):
        w.copy_(kernel[None, None])
        torch.testing.assert_close(xcorr.conv2d(x, w), torch.nn.functional.conv2d(x, w))
