"""Checking and normalising what users pass in, with errors that say what was wrong and what to do.

Everything here runs at the public boundary, before any work; the algorithms behind it may then assume
well-formed input.
"""

from __future__ import annotations

import numbers
import operator
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from xcorr.errors import ChannelsLastWarning
from xcorr.padding import BOUNDARIES, PADDING_MODES
from xcorr.problem import Pair, Quad

NumpyLike = np.ndarray | Sequence[Any] | float | int
"""A NumPy array, or anything ``numpy.asarray`` accepts (nested lists of numbers)."""

ArrayLike = Tensor | NumpyLike
"""A torch tensor or anything :data:`NumpyLike`."""

Result = Tensor | np.ndarray
"""A torch tensor when any argument was one, else a NumPy array."""

MODES = ("valid", "same", "full")

_KEPT_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
SAMPLE_DTYPES = (torch.uint8, torch.uint16)
"""8- and 16-bit image samples, which filter2d's kernels can read without a float copy."""


def one_of(value: object, valid: Sequence[str], name: str) -> str:
    """``value`` is one of the strings ``valid``, or a ValueError naming ``name`` and listing them."""
    if not isinstance(value, str) or value not in valid:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, valid))}, got {value!r}")
    return value


def check_mode(mode: object) -> str:
    """``mode`` is 'valid', 'same' or 'full'."""
    return one_of(mode, MODES, "mode")


def check_boundary(boundary: object) -> str:
    """``boundary`` is one of ``numpy.pad``'s modes that ``filter2d`` supports."""
    return one_of(boundary, BOUNDARIES, "boundary")


def check_padding_mode(padding_mode: object) -> str:
    """``padding_mode`` as in ``torch.nn.Conv2d``; returns the ``numpy.pad`` mode it stands for."""
    return PADDING_MODES[one_of(padding_mode, tuple(PADDING_MODES), "padding_mode")]


def _float_dtype(dtype: torch.dtype, name: str) -> torch.dtype:
    if dtype in _KEPT_FLOAT_DTYPES:
        return dtype
    if dtype.is_complex:
        raise TypeError(f"{name} is complex ({dtype}); xcorr correlates real arrays: pass .real and .imag separately")
    if dtype == torch.bool or not dtype.is_floating_point:
        return torch.float32
    raise TypeError(f"{name} has unsupported dtype {dtype}; use float32 or float64")


def to_tensor(
    value: ArrayLike, name: str, dtype: torch.dtype | None = None, *, keep_samples: bool = False
) -> tuple[Tensor, bool]:
    """``value`` as a torch tensor without copying where possible, and whether it came from NumPy/lists.

    Integer and bool data become float32 (or ``dtype``, a float dtype, when given); float16, bfloat16, float32 and
    float64 keep their dtype unless ``dtype`` is given. ``keep_samples``: uint8 and uint16 data (8/16-bit image
    samples) stay as they are, for kernels that read them. Arrays in the other byte order (``'>f4'`` from FITS
    files on a little-endian machine) are converted to the native one.
    """
    if isinstance(value, Tensor):
        target = value.dtype if keep_samples and value.dtype in SAMPLE_DTYPES else dtype
        target = target or _float_dtype(value.dtype, name)
        return (value if value.dtype == target else value.to(target)), False
    array = np.asarray(value)
    if array.dtype.kind not in "biufc":
        raise TypeError(f"{name} must hold numbers, got a NumPy array of dtype {array.dtype}")
    if array.dtype.kind == "f" and array.dtype.itemsize == 16:
        raise TypeError(f"{name} is {array.dtype}, which torch cannot hold; use float64")
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    if not array.flags.c_contiguous or (array.ndim and array.strides != np.ascontiguousarray(array).strides):
        array = array.copy(order="C")  # not ascontiguousarray, which makes a scalar 1-D
    if array.flags.writeable:
        tensor = torch.from_numpy(array)
    else:
        with warnings.catch_warnings():  # read-only arrays are fine: xcorr never writes into its inputs
            warnings.simplefilter("ignore", UserWarning)
            tensor = torch.from_numpy(array)
    target = _float_dtype(tensor.dtype, name)
    if dtype is not None:
        target = dtype
    if keep_samples and tensor.dtype in SAMPLE_DTYPES:
        target = tensor.dtype
    return (tensor if tensor.dtype == target else tensor.to(target)), True


def to_common_tensors(
    first: ArrayLike,
    second: ArrayLike,
    names: tuple[str, str],
    dtype: torch.dtype | None = None,
    *,
    keep_samples: bool = False,
) -> tuple[Tensor, Tensor, bool]:
    """Both arguments as tensors of one promoted dtype (``dtype``, a float dtype, when given) on one device, and
    whether to hand NumPy back.

    The result is NumPy only when neither argument was a torch tensor. Mixed float dtypes follow
    ``torch.promote_types`` (float32 with float64 -> float64, float16 with bfloat16 -> float32). ``keep_samples``:
    a uint8/uint16 ``first`` stays as it is, ``second`` taking the dtype ``first`` would have been promoted with.
    """
    a, a_numpy = to_tensor(first, names[0], dtype, keep_samples=keep_samples)
    b, b_numpy = to_tensor(second, names[1], dtype)
    if a.device != b.device:
        raise ValueError(
            f"{names[0]} is on {a.device} but {names[1]} is on {b.device}; move both to one device, "
            f"e.g. {names[1]}.to({names[0]}.device)"
        )
    if a.dtype in SAMPLE_DTYPES and keep_samples:
        return a, b.to(dtype or torch.promote_types(torch.float32, b.dtype)), a_numpy and b_numpy
    if a.dtype == b.dtype:
        return a, b, a_numpy and b_numpy
    dtype = torch.promote_types(a.dtype, b.dtype)
    return a.to(dtype), b.to(dtype), a_numpy and b_numpy


def check_channel_axis(channel_axis: object, ndim: int) -> int | None:
    """``channel_axis`` (scikit-image's): ``None``, or an axis of an image with at least 3 dims, made positive."""
    if channel_axis is None:
        return None
    axis = integer(channel_axis, "channel_axis")
    if ndim < 3:
        raise ValueError(f"channel_axis={axis} needs an image with a channel axis besides (H, W), got {ndim}-D")
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"channel_axis={axis} is out of range for a {ndim}-D image; use an axis in -{ndim}..{ndim - 1}"
        )
    return axis % ndim


def warn_if_channels_last(shape: tuple[int, ...]) -> None:
    """One line for an (H, W, 3|4) image filtered without ``channel_axis``: its (W, C) planes are what would be
    filtered."""
    if len(shape) == 3 and shape[-1] in (3, 4) and min(shape[:2]) > 4:
        warnings.warn(
            f"image of shape {shape} looks like channels-last colour (H, W, C), but filter2d filters the last two "
            f"axes, here {shape[0]} planes of {shape[1]}x{shape[2]}; pass channel_axis=-1 to filter each channel",
            ChannelsLastWarning,
            stacklevel=3,
        )


def check_ndim(t: Tensor, name: str, allowed: Sequence[int], layout: str) -> None:
    """``t.ndim`` is one of ``allowed``; ``layout`` names the expected axes for the message."""
    if t.ndim not in allowed:
        raise ValueError(f"{name} must be {layout}, got {t.ndim}-D with shape {tuple(t.shape)}")


def check_not_empty(size: Sequence[int], name: str) -> None:
    """Spatial sizes are positive."""
    if any(s == 0 for s in size):
        raise ValueError(f"{name} is empty (spatial size {'x'.join(map(str, size))}); pass at least one pixel")


def fits_or_raise(image: Pair, kernel: Pair, hint: str) -> None:
    """A kernel larger than the image leaves no output in 'valid' mode: say so, with ``hint``."""
    if kernel[0] > image[0] or kernel[1] > image[1]:
        raise ValueError(
            f"kernel {kernel[0]}x{kernel[1]} is larger than the {image[0]}x{image[1]} input in 'valid' mode; {hint}"
        )


def mode_padding(mode: str, kernel: Pair) -> Quad:
    """(top, bottom, left, right) zeros that turn a valid correlation into ``scipy.signal.correlate2d``'s mode.

    'same' centres the output as SciPy does, even kernels included: ``(k - 1) // 2`` before, ``k // 2`` after.
    """
    kh, kw = kernel
    if mode == "valid":
        return 0, 0, 0, 0
    if mode == "full":
        return kh - 1, kh - 1, kw - 1, kw - 1
    return (kh - 1) // 2, kh // 2, (kw - 1) // 2, kw // 2


def integer(value: object, name: str) -> int:
    """``value`` as an int: Python and NumPy integers (anything with ``__index__``), not bools or floats."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be an int, got {value!r}") from None


def pair(value: object, name: str, *, minimum: int) -> Pair:
    """An int, a one-element sequence or a pair of ints (NumPy integers too), each at least ``minimum``, as a
    pair, as torch's convolutions accept them (``stride=(2,)`` is ``(2, 2)``)."""
    items = tuple(value) if isinstance(value, (tuple, list, np.ndarray)) else (value,)
    if len(items) == 1:
        items = items * 2
    try:
        if len(items) != 2:
            raise TypeError
        first, second = (integer(v, name) for v in items)
    except TypeError:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}") from None
    if min(first, second) < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
    return first, second


def check_cval(cval: object) -> float:
    """``filter2d``'s ``cval``: a real number (a NumPy scalar, or a one-element array or tensor, too)."""
    value = cval.detach().cpu().numpy() if isinstance(cval, Tensor) else cval
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(()).item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"cval must be a real number (the value outside the image), got {cval!r}")
    return float(value)


def conv_padding(padding: object, kernel: Pair, dilation: Pair, stride: Pair) -> Quad:
    """(top, bottom, left, right) for ``conv2d``'s ``padding`` (int, pair, 'valid' or 'same', as torch)."""
    if isinstance(padding, str):
        name = one_of(padding, ("valid", "same"), "padding")
        if name == "valid":
            return 0, 0, 0, 0
        if stride != (1, 1):
            raise ValueError("padding='same' is not supported for strided convolutions; pass explicit padding")
        total_h, total_w = dilation[0] * (kernel[0] - 1), dilation[1] * (kernel[1] - 1)
        return total_h // 2, total_h - total_h // 2, total_w // 2, total_w - total_w // 2
    ph, pw = pair(padding, "padding", minimum=0)
    return ph, ph, pw, pw


def check_groups(groups: object, in_channels: int, weight_shape: Sequence[int]) -> int:
    """``groups`` divides both channel counts and matches the weight's input channels."""
    try:
        count = integer(groups, "groups")
    except TypeError:
        count = 0
    if count < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    out_channels, channels_per_group = weight_shape[0], weight_shape[1]
    if out_channels % count:
        raise ValueError(f"weight has {out_channels} output channels, which groups={count} does not divide")
    if in_channels != channels_per_group * count:
        raise ValueError(
            f"input has {in_channels} channels but weight of shape {tuple(weight_shape)} with groups={count} "
            f"expects {channels_per_group} x {count} = {channels_per_group * count}; "
            "check the channel axis (inputs are (N, C, H, W) or (C, H, W))"
        )
    return count
