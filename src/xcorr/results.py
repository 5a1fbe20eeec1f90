"""What ``filter2d`` hands back: the result in the dtype asked for, laid out as the input, written into ``out``.

An integer dtype is filled as OpenCV fills one with ``ddepth=-1``: each value rounded half to even, then
saturated to the dtype's range (NaN becomes the dtype's minimum, as OpenCV's ``saturate_cast``). The result goes
into its destination (``out``, or a new array) in one pass: rounding, saturation and cast at once, or the cast
and the move of the channel axis back to where the caller had it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from xcorr.algo.saturation import rounds_in_kernels, write_saturated
from xcorr.arguments import Result

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_INTEGER_DTYPES = (
    torch.uint8,
    torch.int8,
    torch.int16,
    torch.uint16,
    torch.int32,
    torch.uint32,
    torch.int64,
    torch.uint64,
)


def check_dtype(dtype: object) -> torch.dtype | None:
    """``dtype=`` as a torch dtype: NumPy dtypes, their names and types (``np.uint8``, ``"uint16"``) or torch's.

    Example:
        >>> check_dtype("uint8"), check_dtype(np.float32), check_dtype(None)
        (torch.uint8, torch.float32, None)
    """
    if dtype is None or isinstance(dtype, torch.dtype):
        resolved = dtype
    else:
        try:
            resolved = torch.from_numpy(np.empty(0, np.dtype(dtype))).dtype  # type: ignore[call-overload]
        except TypeError:
            resolved = None
            dtype_name = repr(dtype)
        else:
            dtype_name = repr(np.dtype(dtype).name)  # type: ignore[call-overload]
        if resolved is None:
            raise TypeError(f"dtype must be a real NumPy or torch dtype (np.uint8, 'float32', ...), got {dtype_name}")
    if resolved is not None and resolved not in _FLOAT_DTYPES + _INTEGER_DTYPES:
        raise TypeError(f"dtype must be an integer or float dtype (np.uint8, 'float32', ...), got {dtype!r}")
    return resolved


@dataclass(frozen=True)
class Destination:
    """Where and how the result goes: its dtype (``None``: the computed one) and the caller's ``out``."""

    dtype: torch.dtype | None
    out: Result | None = None

    @property
    def compute_dtype(self) -> torch.dtype | None:
        """The float dtype to compute in (``None``: the inputs' promotion), the result dtype when it is a float."""
        return self.dtype if self.dtype in _FLOAT_DTYPES else None

    @property
    def rounded_in_kernels(self) -> torch.dtype | None:
        """The integer result dtype where the kernels can round into it themselves
        (:func:`~xcorr.algo.saturation.rounds_in_kernels`), else ``None``."""
        return self.dtype if self.dtype is not None and rounds_in_kernels(self.dtype) else None


def destination(dtype: object, out: object, *, numpy: bool, requires_grad: bool) -> Destination:
    """Check ``dtype`` and ``out`` before any work. ``out`` gives the dtype when ``dtype`` is None; both must agree.

    ``numpy``: whether the result is a NumPy array (then ``out`` must be one, writeable), else a tensor;
    ``requires_grad``: whether an input needs a gradient (``out=`` cannot carry one, as in torch).
    """
    resolved = check_dtype(dtype)
    if out is None:
        return Destination(resolved)
    kind = "a NumPy array" if numpy else "a torch tensor"
    if not isinstance(out, np.ndarray if numpy else Tensor):
        raise TypeError(f"out must be {kind}, as the result is, got {type(out).__name__}")
    out_dtype = check_dtype(out.dtype)
    if resolved is not None and resolved != out_dtype:
        raise ValueError(f"out has dtype {out.dtype} but dtype={dtype!r} was asked for; pass one of them")
    if isinstance(out, np.ndarray) and not out.flags.writeable:
        raise ValueError("out is read-only; pass a writeable array")
    if requires_grad:
        raise ValueError(
            "out= does not support automatic differentiation (an input requires grad); drop out= or detach"
        )
    return Destination(out_dtype, out)


def check_out_shape(where: Destination, shape: tuple[int, ...]) -> None:
    """``out`` has the result's shape."""
    if where.out is not None and tuple(where.out.shape) != shape:
        raise ValueError(f"out has shape {tuple(where.out.shape)} but the result has shape {shape}")


def hand_back(y: Tensor, where: Destination, channel_axis: int | None, numpy: bool) -> Result:
    """``y`` (..., C, Ho, Wo) with the channel axis moved back to ``channel_axis``, in ``where``'s dtype.

    Example:
        >>> hand_back(torch.tensor([[0.5, 1.5, 300.0, -2.0]]), Destination(torch.uint8), None, numpy=True)
        array([[  0,   2, 255,   0]], dtype=uint8)
    """
    target = where.dtype or y.dtype
    if channel_axis is not None:
        y = y.movedim(-3, channel_axis)
    out = where.out
    if isinstance(out, np.ndarray) and min(out.strides, default=0) < 0:  # torch cannot view a flipped array
        np.copyto(out, hand_back(y, Destination(target), None, numpy=True))
        return out
    if out is None and y.dtype == target and y.is_contiguous():
        return y.detach().cpu().numpy() if numpy else y
    destination = torch.empty(y.shape, dtype=target, device=y.device) if out is None else _as_tensor(out)
    if target.is_floating_point or y.dtype == target:  # (an integer y: rounded by the kernels)
        destination.copy_(y)  # one pass: cast and lay out as the input at once
    else:
        write_saturated(y.detach(), destination)
    if out is not None:
        return out
    return destination.cpu().numpy() if numpy else destination


def _as_tensor(out: Result) -> Tensor:
    return torch.from_numpy(out) if isinstance(out, np.ndarray) else out
