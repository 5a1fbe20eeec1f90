"""Measure the cost-model constants of :mod:`xcorr.costs` on this machine and print them as Python lines.

``python -m bench.calibrate`` runs one function per algorithm (each returns ``{constant name: value}``) with the
thread count the library uses, and prints lines to paste into ``src/xcorr/costs.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

import numpy as np
import torch
from scipy.optimize import nnls

from xcorr.algo import direct, fft, separable
from xcorr.lowrank import weight_rank
from xcorr.problem import Problem


def best_time(run: Callable[[], object], repeats: int = 5) -> float:
    """Fastest of ``repeats`` runs after one warm-up, in seconds (the least disturbed by other processes)."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def fft_constants() -> dict[str, float]:
    """Fit ``FFT_PER_*`` by non-negative least squares to timed runs with forced tile sizes.

    The problems span single images with small and large tiles, batches of depthwise images, a dense layer and a
    weight-gradient shape, so every work count of :func:`xcorr.algo.fft.work` varies independently.
    """
    cases = [
        (Problem((1, 1, 1024, 1024), (1, 1, k, k), padding=(k // 2,) * 4), tile)
        for k in (7, 15, 31, 63)
        for tile in (64, 96, 128, 192, 256, 384, 512, 768)
        if tile > 2 * k
    ]
    cases += [
        (Problem((8, 16, 64, 64), (16, 1, 31, 31), padding=(15,) * 4, groups=16), 96),
        (Problem((4, 16, 48, 48), (16, 16, 9, 9), padding=(4,) * 4), 64),
        (Problem((1, 64, 94, 94), (8, 8, 64, 64), groups=8), 96),
    ]
    names = ["point_log2", "transform", "spectrum_mac", "tile_point", "chunk"]
    rows, seconds = [], []
    original = fft.plan_tiling
    try:
        for problem, side in cases:
            tiling = fft._tiling(fft._Shape.of(problem), (side, side))
            fft.plan_tiling = _fixed(tiling)
            x = torch.randn(problem.input_shape)
            w = torch.randn(problem.weight_shape)
            seconds.append(best_time(partial(fft.run, x, w, problem)))
            counts = fft.work(fft._Shape.of(problem), tiling)
            rows.append([counts[name] for name in names])
    finally:
        fft.plan_tiling = original
    matrix = np.array(rows)
    scale = matrix.max(axis=0)
    solution, _ = nnls(matrix / scale, np.array(seconds))
    return {f"FFT_PER_{name.upper()}": float(value) for name, value in zip(names, solution / scale, strict=True)}


Case = tuple[Problem, torch.Tensor, list[float]]


def _fit(cases: list[Case], run: Callable[[torch.Tensor, torch.Tensor, Problem], torch.Tensor]) -> list[float]:
    """Non-negative least squares of the fastest times of ``run(x, w, problem)`` on the given work counts."""
    rows, seconds = [], []
    for problem, w, counts in cases:
        x = torch.randn(problem.input_shape, dtype=problem.dtype)
        seconds.append(best_time(partial(run, x, w, problem)))
        rows.append(counts)
    matrix = np.array(rows)
    scale = matrix.max(axis=0)
    solution, _ = nnls(matrix / scale, np.array(seconds))
    return [float(value) for value in solution / scale]


def _direct_cases(dtype: torch.dtype) -> list[Case]:
    """Row by row: single-channel images with kernels the four-row sweeps leave out, depthwise batches (block
    path) and a grouped layer; small kernels, 'same' padding."""
    problems = [Problem((1, 1, 1024, 1024), (1, 1, k, k), padding=(k // 2,) * 4, dtype=dtype) for k in (4, 9, 11)]
    problems += [
        Problem((8, 32, 64, 64), (32, 1, k, k), padding=(k // 2,) * 4, groups=32, dtype=dtype) for k in (3, 7, 11)
    ]
    problems += [Problem((2, 16, 128, 128), (32, 4, 3, 3), padding=(1,) * 4, groups=4, dtype=dtype)]
    return [_direct_case(problem) for problem in problems]


def _four_row_cases() -> list[Case]:
    """Single-channel float32 images whose kernels the four-row sweeps cover."""
    problems = [Problem((1, 1, 1024, 1024), (1, 1, k, k), padding=(k // 2,) * 4) for k in (3, 5, 7, 10, 14)]
    assert all(direct._mode(problem) == "four rows" for problem in problems)
    return [_direct_case(problem) for problem in problems]


def _direct_case(problem: Problem) -> Case:
    n, o, ho, _ = problem.output_shape
    return problem, torch.randn(problem.weight_shape, dtype=problem.dtype), [n * o * ho, problem.macs]


def direct_constants() -> dict[str, float]:
    """``DIRECT_PER_ROW`` and ``DIRECT_PER_MAC_F32`` fitted on float32 runs of the one-row sweeps,
    ``DIRECT_PER_MAC_F64`` on float64, and ``DIRECT_FOUR_ROW_MAC_FACTOR`` from float32 four-row runs."""
    per_row, per_mac = _fit(_direct_cases(torch.float32), direct.run)
    _, per_mac_f64 = _fit(_direct_cases(torch.float64), direct.run)
    _, per_mac_four_rows = _fit(_four_row_cases(), direct.run)
    return {
        "DIRECT_PER_ROW": per_row,
        "DIRECT_PER_MAC_F32": per_mac,
        "DIRECT_PER_MAC_F64": per_mac_f64,
        "DIRECT_FOUR_ROW_MAC_FACTOR": per_mac_four_rows / per_mac,
    }


def separable_constants() -> dict[str, float]:
    """``SEPARABLE_PER_TERM_ROW`` and ``SEPARABLE_PER_MAC`` (float32) on Gaussian and rank-2 kernels."""
    cases: list[Case] = []
    for k, terms_wanted, channels in ((7, 1, 1), (15, 1, 1), (31, 1, 1), (63, 1, 1), (31, 2, 1), (15, 1, 16)):
        g = torch.exp(-((torch.arange(k) - k // 2) ** 2) / (k / 3) ** 2)
        w = torch.outer(g, g).expand(channels, 1, k, k).contiguous()
        if terms_wanted == 2:
            w = w + torch.outer(torch.ones(k), torch.ones(k))
        size = 1024 if channels == 1 else 128
        rank = weight_rank(w)
        problem = Problem(
            (1, channels, size, size), (channels, 1, k, k), padding=(k // 2,) * 4, groups=channels, weight_rank=rank
        )
        n, o, ho, wo = problem.output_shape
        terms = n * o * ho * rank
        cases.append((problem, w, [terms, terms * (k * size + k * wo)]))
    per_term_row, per_mac = _fit(cases, separable.run)
    return {"SEPARABLE_PER_TERM_ROW": per_term_row, "SEPARABLE_PER_MAC": per_mac}


def _fixed(tiling: fft.Tiling) -> Callable[[Problem], fft.Tiling]:
    """A stand-in for ``fft.plan_tiling`` that always answers ``tiling``."""
    return lambda _problem: tiling


CALIBRATIONS: list[Callable[[], dict[str, float]]] = [fft_constants, direct_constants, separable_constants]


def main() -> None:
    """Run every calibration and print ``NAME = value`` lines."""
    print(f"# measured with {torch.get_num_threads()} torch threads")
    for calibrate in CALIBRATIONS:
        print(f"# {calibrate.__name__}")
        for name, value in calibrate().items():
            print(f"{name} = {value:.2e}")


if __name__ == "__main__":
    main()
