"""Bands of output rows: the reference always, the vendor kernel on thin problems (their temporaries grow with
the output)."""

from types import ModuleType

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.naive import naive_correlate
from xcorr.algo import bands, reference, vendor
from xcorr.problem import Problem


@settings(max_examples=40, deadline=None)
@given(
    height=st.integers(1, 12),
    kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 2)),
    dilation=st.tuples(st.integers(1, 3), st.integers(1, 2)),
    padding=st.tuples(st.integers(0, 9), st.integers(0, 9), st.integers(0, 2), st.integers(0, 3)),
    band_bytes=st.sampled_from([1, 40, 100]),
    algorithm=st.sampled_from([reference, vendor]),
    seed=st.integers(0, 2**16),
)
def test_bands_of_rows_match_the_naive_loop(
    height: int,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    padding: tuple[int, int, int, int],
    band_bytes: int,
    algorithm: ModuleType,
    seed: int,
) -> None:
    """Bands of one row or a few, padding wider than the image included (bands of padding only)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 2, height, 5, generator=g, dtype=torch.float64)
    w = torch.randn(2, 1, *kernel, generator=g, dtype=torch.float64)
    problem = Problem(tuple(x.shape), tuple(w.shape), stride, padding, dilation, groups=2, dtype=torch.float64)
    assume(min(problem.output_shape[2:]) > 0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bands, "BAND_BYTES", band_bytes)
        y = algorithm.run(x, w, problem)
    expected = naive_correlate(x.numpy(), w.numpy(), stride, padding, dilation, groups=2)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_thin_large_outputs_are_split_and_dense_layers_are_not() -> None:
    calls: list[tuple[int, ...]] = []
    conv2d = torch.nn.functional.conv2d

    def counting(x: torch.Tensor, *args: object) -> torch.Tensor:
        calls.append(tuple(x.shape))
        return conv2d(x, *args)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(vendor.F, "conv2d", counting)
        x = torch.randn(1, 1, 2048, 512)
        vendor.run(x, torch.randn(1, 1, 3, 3), Problem((1, 1, 2048, 512), (1, 1, 3, 3), padding=(1, 1, 1, 1)))
        assert len(calls) == 2048 * 512 * 4 // bands.BAND_BYTES
        calls.clear()
        x = torch.randn(1, 16, 256, 256)
        vendor.run(x, torch.randn(16, 16, 3, 3), Problem((1, 16, 256, 256), (16, 16, 3, 3)))
        assert len(calls) == 1
