"""The vendor kernel: ``torch.nn.functional.conv2d`` (oneDNN on CPU, cuDNN on CUDA).

The planner keeps it where it wins, above all dense multi-channel layers with small kernels.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from xcorr import costs
from xcorr.algorithms.registry import Algorithm, register
from xcorr.problem import Problem


def run(x: Tensor, w: Tensor, problem: Problem) -> Tensor:
    """``F.conv2d``; asymmetric zero padding is applied with ``F.pad`` first."""
    top, bottom, left, right = problem.padding
    if top == bottom and left == right:
        padding: tuple[int, int] = (top, left)
    else:
        x = F.pad(x, (left, right, top, bottom))
        padding = (0, 0)
    return F.conv2d(x, w, None, problem.stride, padding, problem.dilation, problem.groups)


def unsupported(problem: Problem) -> str | None:
    """Every problem torch itself accepts is supported."""
    return None


def cost(problem: Problem) -> float:
    """oneDNN is efficient per multiply-add once there are channels to vectorise over, poor without."""
    n, o, ho, wo = problem.output_shape
    channels_per_group = problem.weight_shape[1] * o // problem.groups
    if channels_per_group >= 16:
        return costs.CALL_OVERHEAD + costs.VENDOR_PER_MAC_DENSE * problem.macs
    pixels = n * o * max(ho, 0) * max(wo, 0)
    return costs.CALL_OVERHEAD + costs.VENDOR_PER_MAC_THIN * problem.macs + costs.VENDOR_PER_OUTPUT_PIXEL_THIN * pixels


ALGORITHM = register(
    Algorithm(
        name="vendor",
        run=run,
        unsupported=unsupported,
        cost=cost,
        exact=True,
        summary="torch.nn.functional.conv2d (oneDNN / cuDNN): best for dense multi-channel layers",
    )
)
