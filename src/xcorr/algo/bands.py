"""Running a correlation in bands of output rows, so that algorithms whose temporaries grow with the output
(torch's unfolding conv2d on thin problems, the shift-and-add reference) keep them bounded.

Each band is a problem of its own: the input rows its output rows read, with the zero padding that falls inside
the band (padding rows only, for bands wholly in a padding wider than the image).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from torch import Tensor

from xcorr.problem import Problem

# Output bytes per band (1 MiB: a depthwise 31x31 layer's forward+backward with the reference peaked at the
# memory bar, 113 MiB, with 2).
BAND_BYTES = 2**20


def by_rows(run: Callable[[Tensor, Problem], Tensor], x: Tensor, problem: Problem) -> Tensor:
    """``run(x, problem)`` computed ``run(band, band_problem)`` by band of :data:`BAND_BYTES` output bytes.

    ``x`` (N, C, H, W); ``run`` returns the (N, O, rows, Wo) output of the problem it is given. One call when the
    output fits one band.

    Example:
        >>> import torch
        >>> from xcorr.algo import reference
        >>> x, w = torch.randn(1, 1, 40, 30), torch.randn(1, 1, 3, 3)
        >>> p = Problem((1, 1, 40, 30), (1, 1, 3, 3), padding=(1, 1, 1, 1))
        >>> whole = reference.run(x, w, p)
        >>> banded = by_rows(lambda band, q: reference.run(band, w, q), x, p)
        >>> torch.equal(whole, banded)
        True
    """
    if one_band(problem, x.element_size()):
        return run(x, problem)
    ho, rows = problem.output_shape[2], _rows_per_band(problem, x.element_size())
    y = x.new_empty(problem.output_shape)
    for first in range(0, ho, rows):
        band, band_problem = _band(x, problem, first, min(ho, first + rows))
        y[:, :, first : first + rows] = run(band, band_problem)
    return y


def one_band(problem: Problem, element_size: int) -> bool:
    """Whether :func:`by_rows` runs ``problem`` (elements of ``element_size`` bytes) in one call."""
    return _rows_per_band(problem, element_size) >= problem.output_shape[2]


def _rows_per_band(problem: Problem, element_size: int) -> int:
    n, o, _, wo = problem.output_shape
    return max(1, BAND_BYTES // max(1, n * o * wo * element_size))


def _band(x: Tensor, problem: Problem, first: int, stop: int) -> tuple[Tensor, Problem]:
    """The input rows that output rows ``first:stop`` read, and the problem that computes just those rows."""
    height = problem.input_shape[2]
    top, _, left, right = problem.padding
    begin = first * problem.stride[0] - top  # input rows [begin, end) are read; outside [0, height): padding
    end = (stop - 1) * problem.stride[0] + problem.kernel_extent[0] - top
    lo = min(max(begin, 0), height)
    band = x[:, :, lo : max(lo, min(end, height))]
    rows = end - begin
    padding = (min(max(-begin, 0), rows), min(max(end - height, 0), rows), left, right)
    n, c, h, wid = band.shape
    return band, dataclasses.replace(problem, input_shape=(n, c, h, wid), padding=padding)
