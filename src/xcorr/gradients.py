"""Both backward products of a correlation, written as correlations again.

For ``y = corr(zero_pad(x), w)`` (see :class:`~xcorr.problem.Problem`):

- the input gradient is the correlation of ``dy`` (with ``stride - 1`` zeros inserted between its samples)
  with the flipped, group-transposed weight, padded so the result has ``x``'s size;
- the weight gradient is the correlation of ``x`` (batch and channel axes swapped) with ``dy`` as the kernel:
  the forward's stride becomes the kernel dilation and the forward's dilation becomes the stride.

Each product is a :class:`Problem` the planner chooses an algorithm for, so training runs on the fast paths.
An algorithm with a native backward kernel (the vendor one: torch's own) runs the product on the forward's tensors.
The ``*_problem`` functions give the shapes (for planning); the others build the tensors and run.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from xcorr.algo import get_algorithm
from xcorr.problem import Problem

Correlate = Callable[[Tensor, Tensor, Problem, str], Tensor]


def _dilated_size(size: int, stride: int) -> int:
    return (size - 1) * stride + 1 if size > 0 else 0


def _input_gradient_geometry(p: Problem) -> tuple[tuple[int, int, int, int], tuple[int, int]]:
    """Zero padding for the input-gradient correlation (entries may be negative: crop instead) and dy's size."""
    _, _, ho, wo = p.output_shape
    rows, cols = _dilated_size(ho, p.stride[0]), _dilated_size(wo, p.stride[1])
    (eh, ew), (ph, pw) = p.kernel_extent, p.padded_size
    top, bottom, left, right = p.padding
    surplus_h, surplus_w = ph - (rows + eh - 1), pw - (cols + ew - 1)  # padded rows no window reaches
    pads = (eh - 1 - top, eh - 1 + surplus_h - bottom, ew - 1 - left, ew - 1 + surplus_w - right)
    return pads, (rows, cols)


def input_gradient_problem(p: Problem) -> Problem:
    """The :class:`Problem` that :func:`input_gradient` solves for the forward problem ``p``."""
    pads, (rows, cols) = _input_gradient_geometry(p)
    crop = [max(-q, 0) for q in pads]
    n, o = p.output_shape[:2]
    _, cg, kh, kw = p.weight_shape
    return Problem(
        (n, o, rows - crop[0] - crop[1], cols - crop[2] - crop[3]),
        (cg * p.groups, o // p.groups, kh, kw),
        (1, 1),
        (max(pads[0], 0), max(pads[1], 0), max(pads[2], 0), max(pads[3], 0)),
        p.dilation,
        p.groups,
        p.dtype,
        p.device,
    )


def _insert_zeros(dy: Tensor, stride: tuple[int, int]) -> Tensor:
    if stride == (1, 1):
        return dy
    n, o, ho, wo = dy.shape
    spread = dy.new_zeros((n, o, _dilated_size(ho, stride[0]), _dilated_size(wo, stride[1])))
    spread[..., :: stride[0], :: stride[1]] = dy
    return spread


def input_gradient(dy: Tensor, w: Tensor, p: Problem, algo: str, correlate: Correlate) -> Tensor:
    """dL/dx (N, C, H, W) from dL/dy (N, O, Ho, Wo) and the weight (O, C // groups, kh, kw)."""
    native = get_algorithm(algo).input_gradient
    if native is not None:
        return native(dy, w, p)
    pads, _ = _input_gradient_geometry(p)
    spread = _insert_zeros(dy, p.stride)
    top, bottom, left, right = (max(-q, 0) for q in pads)
    spread = spread[..., top : spread.shape[-2] - bottom, left : spread.shape[-1] - right]
    o, cg, kh, kw = w.shape
    g = p.groups
    flipped = w.reshape(g, o // g, cg, kh, kw).transpose(1, 2).reshape(g * cg, o // g, kh, kw).flip(-2, -1)
    return correlate(spread.contiguous(), flipped.contiguous(), input_gradient_problem(p), algo)


def _weight_gradient_trim(p: Problem) -> tuple[int, int, int, int]:
    """Padding for the weight-gradient product, and the input rows/cols to cut: only what windows read."""
    _, _, ho, wo = p.output_shape
    (eh, ew), (ph, pw) = p.kernel_extent, p.padded_size
    surplus_h = ph - (_dilated_size(ho, p.stride[0]) + eh - 1)
    surplus_w = pw - (_dilated_size(wo, p.stride[1]) + ew - 1)
    bottom, right = p.padding[1], p.padding[3]
    return (
        bottom - min(bottom, surplus_h),
        surplus_h - min(bottom, surplus_h),
        right - min(right, surplus_w),
        (surplus_w - min(right, surplus_w)),
    )


def weight_gradient_problem(p: Problem) -> Problem:
    """The :class:`Problem` that :func:`weight_gradient` solves for the forward problem ``p``."""
    n, _, h, wid = p.input_shape
    o, cg, _, _ = p.weight_shape
    _, _, ho, wo = p.output_shape
    bottom, cut_h, right, cut_w = _weight_gradient_trim(p)
    return Problem(
        (cg, p.groups * n, h - cut_h, wid - cut_w),
        (o, n, ho, wo),
        p.dilation,
        (p.padding[0], bottom, p.padding[2], right),
        p.stride,
        p.groups,
        p.dtype,
        p.device,
    )


def weight_gradient(x: Tensor, dy: Tensor, p: Problem, algo: str, correlate: Correlate) -> Tensor:
    """dL/dw (O, C // groups, kh, kw) from the input (N, C, H, W) and dL/dy (N, O, Ho, Wo)."""
    native = get_algorithm(algo).weight_gradient
    if native is not None:
        return native(x, dy, p)
    n, _, h, wid = x.shape
    o, cg, _, _ = p.weight_shape
    g = p.groups
    _, cut_h, _, cut_w = _weight_gradient_trim(p)
    x = x[..., : h - cut_h, : wid - cut_w]
    by_group = x.reshape(n, g, cg, h - cut_h, wid - cut_w).permute(2, 1, 0, 3, 4)
    columns = by_group.reshape(cg, g * n, h - cut_h, wid - cut_w)
    kernels = dy.reshape(n, g, o // g, *dy.shape[-2:]).permute(1, 2, 0, 3, 4).reshape(o, n, *dy.shape[-2:])
    grad = correlate(columns.contiguous(), kernels.contiguous(), weight_gradient_problem(p), algo)
    return grad.transpose(0, 1).contiguous()
