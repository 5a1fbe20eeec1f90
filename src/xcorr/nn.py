"""Layers: the notebook's ``Conv2D``, and drop-in ``Conv2d`` / ``LazyConv2d`` running on xcorr's planner.

``Conv2d`` and ``LazyConv2d`` subclass their torch namesakes: same constructor arguments (plus ``algo=``),
same parameters and ``state_dict`` keys, so weights load both ways and ``isinstance(layer, torch.nn.Conv2d)``
holds. :func:`convert` switches an existing model over in place.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from xcorr.algo import get_algorithm
from xcorr.functional import conv2d, corr2d


def _checked(algo: str) -> str:
    if algo != "auto":
        get_algorithm(algo)
    return algo


class Conv2D(nn.Module):
    """The notebook's layer: ``forward(x) = corr2d(x, weight) + bias`` for a single 2-D image.

    Args:
        kernel_size: (h, w); ``weight`` starts as ``torch.rand(kernel_size)``, ``bias`` as ``torch.zeros(1)``.

    Shapes: ``x`` (H, W) -> (H - h + 1, W - w + 1).

    Example:
        >>> layer = Conv2D((1, 2))
        >>> layer(torch.ones(6, 8)).shape
        torch.Size([6, 7])
    """

    def __init__(self, kernel_size: tuple[int, int]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.rand(kernel_size))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        return corr2d(x, self.weight) + self.bias

    def extra_repr(self) -> str:
        return f"kernel_size={tuple(self.weight.shape)}"


class Conv2d(nn.Conv2d):
    """``torch.nn.Conv2d`` computed by xcorr: same arguments, parameters and ``state_dict``, plus ``algo=``.

    Shapes: (N, C_in, H, W) or (C_in, H, W) -> (N, C_out, Ho, Wo), as torch.

    Example:
        >>> layer = Conv2d(3, 8, kernel_size=5, padding="same")
        >>> layer(torch.randn(2, 3, 32, 32)).shape
        torch.Size([2, 8, 32, 32])
    """

    def __init__(self, *args: Any, algo: str = "auto", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.algo = _checked(algo)

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        # torch keeps stride and dilation as tuples and padding as a tuple or a str: all taken as they are
        return conv2d(
            input,
            weight,
            bias,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            self.padding_mode,
            algo=self.algo,
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, algo={self.algo!r}"


class LazyConv2d(nn.LazyConv2d):
    """``torch.nn.LazyConv2d`` computed by xcorr: ``in_channels`` is inferred at the first call.

    After that call the layer becomes an :class:`xcorr.nn.Conv2d` (as torch's becomes a ``torch.nn.Conv2d``).

    Example:
        >>> layer = LazyConv2d(1, kernel_size=(1, 2), bias=False)
        >>> layer(torch.ones(1, 1, 6, 8)).shape
        torch.Size([1, 1, 6, 7])
        >>> type(layer).__name__
        'Conv2d'
    """

    cls_to_become = Conv2d
    _conv_forward = Conv2d._conv_forward

    def __init__(self, *args: Any, algo: str = "auto", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.algo = _checked(algo)


def convert(model: nn.Module, *, algo: str = "auto") -> nn.Module:
    """Make every ``torch.nn.Conv2d`` in ``model`` (the model itself included) an :class:`xcorr.nn.Conv2d`.

    Done in place, so parameters, buffers, hooks and optimiser references are shared, not copied; returns
    ``model`` for chaining. Subclasses of ``torch.nn.Conv2d`` other than torch's own are left alone.

    Example:
        >>> net = convert(torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU()))
        >>> type(net[0]).__module__, net[0].algo
        ('xcorr.nn', 'auto')
    """
    _checked(algo)
    for module in model.modules():
        if type(module) in (nn.Conv2d, Conv2d):
            module.__class__ = Conv2d
            setattr(module, "algo", algo)  # noqa: B010 (typed as a plain Module here)
    return model
