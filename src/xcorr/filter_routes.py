"""``filter2d`` calls decided once: a repeat of a call runs its kernel straight away.

A filter applied to every image of a stack, a video or a tile grid is called with the same shapes, dtypes,
kernel and settings each time, and on a small image the deciding (argument checks, conversions, the plan, the
kernel's rank) costs more than the filtering: about 60 us against 2 us of OpenCV's on an 8x8 image. The first
such call records a :class:`FilterRoute`, what it did in terms of the arrays alone; a repeat with the same
:func:`filter_key` replays it. Only calls that nothing records are remembered (NumPy or plain CPU tensors, no
gradient, ``out=`` or tracing), and only where the planned algorithm runs the tensors directly
(:func:`xcorr.boundaries.plain_runner`); the rest take the full path every time.

Example:
    >>> import numpy as np, xcorr
    >>> image, kernel = np.ones((16, 16), np.float32), np.full((3, 3), 1 / 9, np.float32)
    >>> first = xcorr.filter2d(image, kernel, boundary="reflect")  # decides, and remembers
    >>> again = xcorr.filter2d(image, kernel, boundary="reflect")  # replays
    >>> bool(np.allclose(first, again)), float(again[0, 0])
    (True, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from xcorr import lowrank, results
from xcorr.arguments import ArrayLike, Result
from xcorr.autograd import PLAIN_TYPES, traced_now
from xcorr.boundaries import Runner
from xcorr.planner import route_state
from xcorr.results import Destination
from xcorr.routes import Routes


@dataclass(frozen=True)
class FilterRoute:
    """What a ``filter2d`` call did, as a function of its two arrays: convert them to these dtypes, move the
    channel axis, view the image as rows, run the planned kernels, hand the result back."""

    image_dtype: torch.dtype
    kernel_dtype: torch.dtype
    moved_axis: int | None  # the channel axis moved before the spatial ones, as filter2d moves it
    rows: tuple[int, int, int, int]  # the image as (planes, 1, H, W * samples)
    computed: tuple[int, ...]  # the result's shape before the channel axis goes back
    runner: Runner
    where: Destination
    to_numpy: bool

    def __call__(self, image: ArrayLike, kernel: ArrayLike) -> Result:
        x = _tensor(image).to(self.image_dtype)
        if self.moved_axis is not None:
            x = x.movedim(self.moved_axis, -3)
        k = _tensor(kernel).to(self.kernel_dtype)
        y = self.runner(x.reshape(self.rows), k[None, None], None, self.where.rounded_in_kernels)
        return results.hand_back(y.reshape(self.computed), self.where, self.moved_axis, self.to_numpy)


FILTER_ROUTES: Routes[FilterRoute] = Routes()
"""``filter2d`` call keys (:func:`filter_key`) -> their routes (``None``: the full path, every time)."""


def filter_key(image: object, kernel: object, settings: tuple[object, ...]) -> tuple[object, ...] | None:
    """Everything that decides a ``filter2d`` call, or ``None`` where it is not remembered: anything but C-ordered,
    native, writeable NumPy arrays or plain contiguous CPU tensors that need no gradient; while tracing or under
    ``torch.func`` transforms or autocast; an (H, W, 3|4) image without ``channel_axis`` (its warning is given
    every time); unhashable settings. The kernel's values are part of the key where its rank can change the
    plan (:func:`xcorr.lowrank.rank_is_relevant`), its shape and dtype otherwise; ``settings`` are the call's
    other arguments, ``out`` excepted (calls with ``out=`` are not remembered)."""
    image_key, kernel_key = _array_key(image), _array_key(kernel)
    if image_key is None or kernel_key is None or len(kernel_key[1]) != 2 or not _hashable(settings):
        return None
    if traced_now() or torch._C._are_functorch_transforms_active() or torch.is_autocast_enabled("cpu"):
        return None
    shape, channel_axis = image_key[1], settings[3]
    if channel_axis is None and len(shape) == 3 and shape[-1] in (3, 4):
        return None
    kh, kw = kernel_key[1]
    values = _values(kernel) if lowrank.rank_is_relevant((1, 1, kh, kw)) else None
    return image_key, kernel_key, values, settings, *route_state()


def _array_key(value: object) -> tuple[str, tuple[int, ...], object] | None:
    """(kind, shape, dtype) of an array a route can take as it is, else ``None``."""
    if type(value) is np.ndarray:
        flags = value.flags
        if not (flags.c_contiguous and flags.writeable and value.dtype.isnative):
            return None
        return "numpy", value.shape, value.dtype
    if type(value) in PLAIN_TYPES:
        tensor = value  # a Tensor or Parameter
        assert isinstance(tensor, Tensor)
        if (
            tensor.device.type != "cpu"
            or not tensor.is_contiguous()
            or (tensor.requires_grad and torch.is_grad_enabled())
        ):
            return None
        return "torch", tuple(tensor.shape), tensor.dtype
    return None


def _values(kernel: object) -> bytes:
    """The kernel's values (float64 for tensors: NumPy holds no bfloat16; the dtype is in the key besides)."""
    if isinstance(kernel, np.ndarray):
        return kernel.tobytes()
    return bytes(kernel.detach().to(torch.float64).numpy().tobytes())  # type: ignore[attr-defined]


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _tensor(value: ArrayLike) -> Tensor:
    return torch.from_numpy(value) if isinstance(value, np.ndarray) else value  # type: ignore[return-value]
