"""The vendor kernel: ``torch.nn.functional.conv2d`` (oneDNN on CPU, cuDNN on CUDA).

The planner keeps it where it wins, above all dense multi-channel layers with small kernels. When the planner
gives it a gradient product, it runs torch's own backward-data / backward-weight kernels on the forward's
tensors (:func:`input_gradient`, :func:`weight_gradient`), which are tuned for exactly that job. On thin
problems the forward runs in bands of output rows, which bounds torch's temporaries.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor
from torch.nn import grad as conv_grad

from xcorr import costs
from xcorr.algo import bands
from xcorr.algo.registry import Algorithm, register
from xcorr.problem import Problem

# Fewer (input x output) channel pairs per group than this: torch's CPU conv2d unfolds the input, its temporaries
# about 17 times its output; such problems run in bands of output rows.
THIN_CHANNELS = 16


def run(x: Tensor, w: Tensor, problem: Problem) -> Tensor:
    """``F.conv2d``, by bands of output rows on thin problems (:func:`xcorr.algo.bands.by_rows`)."""
    if _thin(problem):
        return bands.by_rows(lambda band, band_problem: _conv2d(band, w, band_problem), x, problem)
    return _conv2d(x, w, problem)


def _thin(problem: Problem) -> bool:
    """Fewer than :data:`THIN_CHANNELS` (input x output) channel pairs per group: no channels to vectorise over.
    Depthwise layers are not thin: torch runs them with a kernel of their own, which unfolds nothing (its peak,
    measured on an 8x96x112x112 layer, 3x3 and 31x31: about twice the output)."""
    if _depthwise(problem):
        return False
    return problem.weight_shape[1] * problem.weight_shape[0] // problem.groups < THIN_CHANNELS


def _depthwise(problem: Problem) -> bool:
    """One output channel per input channel (torch's depthwise kernel), more than one channel."""
    return problem.groups > 1 and problem.is_depthwise and problem.weight_shape[0] == problem.groups


def _conv2d(x: Tensor, w: Tensor, problem: Problem) -> Tensor:
    """One ``F.conv2d`` call; asymmetric zero padding is applied with ``F.pad`` first."""
    padding, (top, bottom, left, right) = _padding(problem)
    if any((top, bottom, left, right)):
        x = F.pad(x, (left, right, top, bottom))
    return F.conv2d(x, w, None, problem.stride, padding, problem.dilation, problem.groups)


def whole_call(problem: Problem) -> Callable[[Tensor, Tensor], Tensor] | None:
    """:func:`run` for ``problem`` as the one ``F.conv2d`` call it makes, geometry bound, where it makes one (the
    padding is symmetric and the problem not run in bands); else ``None``.

    Example:
        >>> import torch
        >>> call = whole_call(Problem((1, 8, 8, 8), (8, 8, 3, 3), padding=(1, 1, 1, 1)))
        >>> call(torch.ones(1, 8, 8, 8), torch.ones(8, 8, 3, 3))[0, 0, 0, 0].item()
        32.0
    """
    padding, extra = _padding(problem)
    if any(extra) or (_thin(problem) and not bands.one_band(problem, problem.dtype.itemsize)):
        return None
    stride, dilation, groups = problem.stride, problem.dilation, problem.groups
    return lambda x, w: F.conv2d(x, w, None, stride, padding, dilation, groups)


def _padding(problem: Problem) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    """torch's symmetric padding, and the (top, bottom, left, right) still to apply by hand."""
    top, bottom, left, right = problem.padding
    if top == bottom and left == right:
        return (top, left), (0, 0, 0, 0)
    return (0, 0), problem.padding


def input_gradient(dy: Tensor, w: Tensor, problem: Problem) -> Tensor:
    """dL/dx (N, C, H, W) for ``problem`` from dL/dy, by torch's own backward-data kernel."""
    padding, (top, bottom, left, right) = _padding(problem)
    n, c, h, wid = problem.input_shape
    size = (n, c, h + top + bottom, wid + left + right)
    dx: Tensor = conv_grad.conv2d_input(size, w, dy, problem.stride, padding, problem.dilation, problem.groups)
    return dx[..., top : top + h, left : left + wid]


def weight_gradient(x: Tensor, dy: Tensor, problem: Problem) -> Tensor:
    """dL/dw (O, C // groups, kh, kw) for ``problem`` from x and dL/dy, by torch's own backward-weight kernel."""
    padding, (top, bottom, left, right) = _padding(problem)
    if any((top, bottom, left, right)):
        x = F.pad(x, (left, right, top, bottom))
    dw: Tensor = conv_grad.conv2d_weight(
        x, problem.weight_shape, dy, problem.stride, padding, problem.dilation, problem.groups
    )
    return dw


def unsupported(problem: Problem) -> str | None:
    """Every problem torch itself accepts is supported."""
    return None


def cost(problem: Problem) -> float:
    """oneDNN is efficient per multiply-add once there are channels to vectorise over, poor without; depthwise
    layers have a kernel of their own."""
    n, o, ho, wo = problem.output_shape
    pixels = n * o * max(ho, 0) * max(wo, 0)
    if _depthwise(problem):
        return (
            costs.CALL_OVERHEAD
            + costs.VENDOR_PER_MAC_DEPTHWISE * problem.macs
            + costs.VENDOR_PER_OUTPUT_PIXEL_DEPTHWISE * pixels
        )
    if not _thin(problem):
        return costs.CALL_OVERHEAD + costs.VENDOR_PER_MAC_DENSE * problem.macs
    return costs.CALL_OVERHEAD + costs.VENDOR_PER_MAC_THIN * problem.macs + costs.VENDOR_PER_OUTPUT_PIXEL_THIN * pixels


ALGORITHM = register(
    Algorithm(
        name="vendor",
        run=run,
        unsupported=unsupported,
        cost=cost,
        exact=True,
        summary="torch.nn.functional.conv2d (oneDNN / cuDNN): best for dense multi-channel layers",
        input_gradient=input_gradient,
        weight_gradient=weight_gradient,
        channels_last=True,
    )
)
