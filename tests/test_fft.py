"""FFT-specific behaviour: tile and chunk boundaries, the absolute error bound, large kernels, bounded memory.

The generic value and gradient checks of every algorithm live in ``test_algorithms.py``; these tests force the
FFT path into the corners its tiling creates and compare with ``torch.nn.functional.conv2d`` in float64.
"""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import xcorr
from xcorr import costs
from xcorr.algo import fft
from xcorr.problem import Problem


def torch_reference(x: torch.Tensor, w: torch.Tensor, problem: Problem) -> torch.Tensor:
    top, bottom, left, right = problem.padding
    padded = F.pad(x.double(), (left, right, top, bottom))
    return F.conv2d(padded, w.double(), None, problem.stride, 0, problem.dilation, problem.groups)


def absolute_bound(x: torch.Tensor, w: torch.Tensor, problem: Problem) -> float:
    """eps * max|x| * (largest sum|w| over output channels) * a small factor for the transform's depth."""
    fh, fw = fft.plan_tiling(problem).fft_shape
    eps = torch.finfo(x.dtype if x.dtype == torch.float64 else torch.float32).eps
    depth = 4 + (fh * fw).bit_length()
    return eps * depth * float(x.abs().max()) * float(w.abs().sum((1, 2, 3)).max())


@contextmanager
def small_tiles() -> Iterator[None]:
    """Tiny tiles, chunks and kernel-spectra budget, so that every boundary between them gets crossed."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(costs, "FFT_MAX_TILE_POINTS", 1)
        patch.setattr(fft, "CHUNK_BYTES", 1)
        patch.setattr(fft, "KERNEL_SPECTRA_BYTES", 1)
        fft._plan_tiling.cache_clear()
        try:
            yield
        finally:
            fft._plan_tiling.cache_clear()


@st.composite
def problems(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor, Problem]:
    kernel = (draw(st.integers(1, 9)), draw(st.integers(1, 9)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    padding = tuple(draw(st.integers(0, 12)) for _ in range(4))
    extent = (dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)
    size = [draw(st.integers(max(1, extent[a] - padding[2 * a] - padding[2 * a + 1]), extent[a] + 60)) for a in (0, 1)]
    groups, in_per_group, out_per_group = (draw(st.integers(1, 3)) for _ in range(3))
    n = draw(st.integers(1, 3))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    x = torch.randn(n, groups * in_per_group, *size, generator=g, dtype=torch.float64)
    w = torch.randn(groups * out_per_group, in_per_group, *kernel, generator=g, dtype=torch.float64)
    problem = Problem(tuple(x.shape), tuple(w.shape), stride, padding, dilation, groups, torch.float64)  # type: ignore[arg-type]
    return x, w, problem


@given(problems())
def test_matches_conv2d_across_tile_and_chunk_boundaries(case: tuple[torch.Tensor, torch.Tensor, Problem]) -> None:
    x, w, problem = case
    with small_tiles():
        y = fft.run(x, w, problem)
        bound = absolute_bound(x, w, problem)
    reference = torch_reference(x, w, problem)
    assert y.shape == reference.shape and y.dtype == torch.float64
    assert (y - reference).abs().max().item() <= bound


@given(problems())
def test_matches_conv2d_with_planned_tiles(case: tuple[torch.Tensor, torch.Tensor, Problem]) -> None:
    x, w, problem = case
    y = fft.run(x, w, problem)
    assert (y - torch_reference(x, w, problem)).abs().max().item() <= absolute_bound(x, w, problem)


def test_tiles_cover_the_output_with_fast_even_lengths() -> None:
    for size, k, stride in [(2048, 31, 1), (1000, 7, 2), (97, 63, 3), (5, 5, 1)]:
        problem = Problem((1, 1, size, size + 3), (1, 1, k, k), stride=(stride, stride), padding=(k // 2,) * 4)
        tiling = fft.plan_tiling(problem)
        for f, step, out, grid, total in zip(
            tiling.fft_shape, tiling.step, tiling.tile_out, tiling.grid, problem.output_shape[2:], strict=True
        ):
            odd = f // (f & -f)
            assert f == 1 or (f % 2 == 0 and odd in (1, 3, 5))
            assert step == out * stride and (out - 1) * stride + k <= f
            assert grid * out >= total > (grid - 1) * out


def test_kernel_as_large_as_the_input_uses_one_transform() -> None:
    """The weight-gradient product of a depthwise layer: the 'kernel' is the whole output gradient."""
    n, c, size, k = 4, 6, 40, 15
    padded = size + 2 * (k // 2)
    problem = Problem((1, n * c, padded, padded), (c, n, size, size), groups=c, dtype=torch.float64)
    assert fft.plan_tiling(problem).grid == (1, 1)
    x = torch.randn(problem.input_shape, dtype=torch.float64)
    w = torch.randn(problem.weight_shape, dtype=torch.float64)
    y = fft.run(x, w, problem)
    assert y.shape == (1, c, k, k)
    assert (y - torch_reference(x, w, problem)).abs().max().item() <= absolute_bound(x, w, problem)


def test_error_is_absolute_not_relative() -> None:
    """Outputs far below eps * max|x| * sum|w| lose their relative accuracy, as documented; the bound holds."""
    x = torch.full((1, 1, 40, 40), 1e-6, dtype=torch.float32)
    x[..., :, :5] = 1e3
    w = torch.rand(1, 1, 31, 31, dtype=torch.float32) * 1e-3
    w[..., 0, 0] = 1.0
    problem = Problem((1, 1, 40, 40), (1, 1, 31, 31))
    assert fft.plan_tiling(problem).grid == (1, 1)  # large and tiny values share one transform
    y = fft.run(x, w, problem)
    reference = torch_reference(x, w, problem)
    assert (y - reference).abs().max().item() <= absolute_bound(x, w, problem)
    tiny = reference[..., :, 5:]  # these outputs read only the 1e-6 values
    relative = ((y[..., :, 5:] - tiny).abs() / tiny).max().item()
    assert relative > 1e-2


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_computed_in_float32(dtype: torch.dtype) -> None:
    x = torch.randn(2, 3, 30, 41).to(dtype)
    w = torch.randn(3, 1, 7, 5).to(dtype)
    problem = Problem((2, 3, 30, 41), (3, 1, 7, 5), padding=(3, 3, 2, 2), groups=3, dtype=dtype)
    y = fft.run(x, w, problem)
    assert y.dtype == dtype
    reference = torch_reference(x, w, problem)
    assert (y.double() - reference).abs().max().item() <= 2 * torch.finfo(dtype).eps * reference.abs().max().item()


MEMORY_SCRIPT = """
import json, resource, sys, torch
from xcorr.algo import fft
from xcorr.problem import Problem
torch.set_num_threads(1)
x = torch.randn(1, 1, 2048, 2048, dtype=torch.float64)
w = torch.randn(1, 1, 31, 31, dtype=torch.float64)
problem = Problem(tuple(x.shape), tuple(w.shape), padding=(15,) * 4, dtype=torch.float64)
small = Problem((1, 1, 64, 64), (1, 1, 31, 31), padding=(15,) * 4, dtype=torch.float64)
fft.run(x[..., :64, :64].contiguous(), w, small)  # load the FFT library before the baseline
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
y = fft.run(x, w, problem)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"extra": (after - before) * 1024, "output": y.numel() * y.element_size()}))
"""


def test_extra_peak_memory_is_bounded() -> None:
    """float64 2048x2048 with a 31x31 kernel (torch's own conv2d tries to allocate 31 GB): peak RSS growth, the
    output included, stays within 3x the output plus 64 MiB."""
    source_root = str(Path(xcorr.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [source_root, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT], capture_output=True, text=True, check=True, env=env)
    measured = json.loads(done.stdout)
    assert measured["extra"] <= 3 * measured["output"] + 64 * 2**20
