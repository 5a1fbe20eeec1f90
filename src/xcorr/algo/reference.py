"""The plain path: one shifted view of the input per kernel tap, contracted over channels.

No cleverness, so it is easy to trust; it accumulates in float32 for half-precision inputs. Cost grows with
the number of kernel taps, so the planner only picks it for tiny problems.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from xcorr import costs
from xcorr.algo import bands
from xcorr.algo.registry import Algorithm, register
from xcorr.problem import Problem


def run(x: Tensor, w: Tensor, problem: Problem) -> Tensor:
    """Sum over taps (i, j) of ``w[..., i, j]`` times the input window that tap sees, by bands of output rows
    (:func:`xcorr.algo.bands.by_rows`: the padded input and each tap's product are band-sized)."""
    return bands.by_rows(lambda band, band_problem: _shift_and_add(band, w, band_problem), x, problem)


def _shift_and_add(x: Tensor, w: Tensor, problem: Problem) -> Tensor:
    top, bottom, left, right = problem.padding
    if any(problem.padding):
        x = F.pad(x, (left, right, top, bottom))
    n, _, h, wid = x.shape
    o, cg, kh, kw = w.shape
    g = problem.groups
    _, _, ho, wo = problem.output_shape
    (sh, sw), (dh, dw) = problem.stride, problem.dilation
    accumulate = torch.float64 if x.dtype == torch.float64 else torch.float32
    xg = x.to(accumulate).view(n, g, cg, h, wid)
    wg = w.to(accumulate).view(g, o // g, cg, kh, kw)
    y = x.new_zeros((n, g, o // g, ho, wo), dtype=accumulate)
    for i in range(kh):
        for j in range(kw):
            window = xg[..., i * dh : i * dh + sh * (ho - 1) + 1 : sh, j * dw : j * dw + sw * (wo - 1) + 1 : sw]
            y += torch.einsum("ngchw,goc->ngohw", window, wg[..., i, j])
    return y.view(n, o, ho, wo).to(x.dtype)


def unsupported(problem: Problem) -> str | None:
    """Every problem is supported."""
    return None


def cost(problem: Problem) -> float:
    """Each tap is one pass over the output plus a contraction over channels."""
    _, _, kh, kw = problem.weight_shape
    n, o, ho, wo = problem.output_shape
    taps = kh * kw
    pixels = n * o * max(ho, 0) * max(wo, 0)
    return (
        costs.CALL_OVERHEAD
        + taps * (costs.REFERENCE_PER_TAP + costs.REFERENCE_PER_TAP_PIXEL * pixels)
        + costs.REFERENCE_PER_MAC * problem.macs
    )


ALGORITHM = register(
    Algorithm(
        name="reference",
        run=run,
        unsupported=unsupported,
        cost=cost,
        exact=True,
        summary="plain shift-and-add in torch: every case, slow for large kernels",
    )
)
