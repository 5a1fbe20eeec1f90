"""The one question every algorithm answers: a zero-padded, strided, dilated, grouped 2-D correlation.

A :class:`Problem` holds shapes and geometry only, never array values, so the planner can reason about it
(and cache its decisions) before any data exists. Every public function (``corr2d``, ``filter2d``,
``conv2d``) and every gradient product is reduced to one of these.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

Pair = tuple[int, int]
Quad = tuple[int, int, int, int]


@dataclass(frozen=True)
class Problem:
    """Geometry of ``y = correlate(zero_pad(x), w)``, with ``x`` (N, C, H, W) and ``w`` (O, C // groups, kh, kw).

    ``padding`` is (top, bottom, left, right) zeros around ``x``; ``y`` is (N, O, Ho, Wo) with
    ``Ho = (H + top + bottom - dilation_h * (kh - 1) - 1) // stride_h + 1`` (likewise ``Wo``), exactly as
    ``torch.nn.functional.conv2d``. ``weight_rank`` is the numerical rank of the worst (o, c) kernel slice when
    it is known (the separable algorithm needs it), else ``None``. ``channels_last``: ``x`` is laid out channels
    last (and the result will be), which changes what each algorithm costs (:func:`is_channels_last`).
    ``input_dtype``: the 8- or 16-bit dtype ``x`` is stored in where the kernels that can read such samples as they
    are (:attr:`xcorr.algo.registry.Algorithm.run_extended`) accumulate in ``dtype``, else ``None`` (``x`` is in
    ``dtype``): reading a ``uint16`` sample costs a kernel more than reading a float, so plans differ.

    Example:
        >>> Problem((1, 1, 6, 8), (1, 1, 1, 2)).output_shape
        (1, 1, 6, 7)
    """

    input_shape: Quad
    weight_shape: Quad
    stride: Pair = (1, 1)
    padding: Quad = (0, 0, 0, 0)
    dilation: Pair = (1, 1)
    groups: int = 1
    dtype: torch.dtype = torch.float32
    device: str = "cpu"
    weight_rank: int | None = None
    channels_last: bool = False
    input_dtype: torch.dtype | None = None

    @property
    def padded_size(self) -> Pair:
        """(H + top + bottom, W + left + right)."""
        _, _, h, w = self.input_shape
        top, bottom, left, right = self.padding
        return h + top + bottom, w + left + right

    @property
    def kernel_extent(self) -> Pair:
        """Rows and columns of input one output pixel reads: ``dilation * (k - 1) + 1``."""
        kh, kw = self.weight_shape[2:]
        return self.dilation[0] * (kh - 1) + 1, self.dilation[1] * (kw - 1) + 1

    @functools.cached_property  # read several times per call on the way to a kernel
    def output_shape(self) -> Quad:
        """(N, O, Ho, Wo); Ho or Wo is 0 or less when the kernel does not fit."""
        (ph, pw), (eh, ew) = self.padded_size, self.kernel_extent
        n, o = self.input_shape[0], self.weight_shape[0]
        return n, o, (ph - eh) // self.stride[0] + 1, (pw - ew) // self.stride[1] + 1

    @property
    def is_depthwise(self) -> bool:
        """Each output channel reads exactly one input channel."""
        return self.weight_shape[1] == 1 and self.groups == self.input_shape[1]

    @property
    def macs(self) -> int:
        """Multiply-adds a direct (sliding window) evaluation performs."""
        n, o, ho, wo = self.output_shape
        _, cg, kh, kw = self.weight_shape
        return n * o * max(ho, 0) * max(wo, 0) * cg * kh * kw

    def describe(self) -> str:
        """One line for error messages and plans: ``input 1x1x6x8, kernel 1x1x1x2, float32 on cpu``."""
        parts = [
            "input " + "x".join(map(str, self.input_shape)),
            "kernel " + "x".join(map(str, self.weight_shape)),
        ]
        if self.stride != (1, 1):
            parts.append(f"stride {self.stride}")
        if any(self.padding):
            parts.append(f"padding {self.padding}")
        if self.dilation != (1, 1):
            parts.append(f"dilation {self.dilation}")
        if self.groups != 1:
            parts.append(f"groups {self.groups}")
        layout = ", channels last" if self.channels_last else ""
        samples = "" if self.input_dtype is None else f" ({str(self.input_dtype).removeprefix('torch.')} samples)"
        return ", ".join(parts) + f", {str(self.dtype).removeprefix('torch.')}{samples}{layout} on {self.device}"


def is_channels_last(x: torch.Tensor) -> bool:
    """Whether ``x`` (N, C, H, W) is laid out channels last (and not also plainly contiguous)."""
    return not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
