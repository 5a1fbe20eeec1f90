"""The public functions: ``corr2d`` (the notebook's), ``filter2d`` (image filtering) and ``conv2d`` (layers).

Each checks its arguments, turns boundary handling into padding, and hands one zero-padded correlation to the
engine (:func:`xcorr.autograd.correlate`). NumPy (or nested lists) in gives NumPy out; a torch tensor anywhere
in the arguments gives a torch tensor out, differentiable in every tensor argument.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import cast, overload

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from xcorr import arguments, results, routes
from xcorr.arguments import ArrayLike, NumpyLike, Result
from xcorr.autograd import PLAIN_TYPES, correlate, runs_torch_kernel, traced_now
from xcorr.boundaries import correlate_extended, plain_runner
from xcorr.filter_routes import FILTER_ROUTES, FilterRoute, filter_key
from xcorr.problem import Pair, Quad
from xcorr.routes import Routes


def _hand_back(y: Tensor, to_numpy: bool) -> Result:
    return y.detach().cpu().numpy() if to_numpy else y


@overload
def corr2d(x: Tensor, k: ArrayLike) -> Tensor: ...
@overload
def corr2d(x: NumpyLike, k: NumpyLike) -> np.ndarray: ...
@overload
def corr2d(x: ArrayLike, k: ArrayLike) -> Result: ...
def corr2d(x: ArrayLike, k: ArrayLike) -> Result:
    """Valid 2-D cross-correlation of one image with one kernel: the notebook's ``corr2d``.

    Args:
        x: image (H, W).
        k: kernel (h, w), at most as large as ``x``.

    Returns:
        (H - h + 1, W - w + 1): ``y[i, j] = sum(x[i:i+h, j:j+w] * k)``. NumPy in -> NumPy out; torch in -> torch
        out, differentiable in ``x`` and ``k``. Integer/bool inputs become float32; float16, bfloat16, float32
        and float64 keep their dtype (mixed dtypes promote as in torch).

    Example:
        >>> import torch
        >>> corr2d(torch.tensor([[0., 1., 2.], [3., 4., 5.], [6., 7., 8.]]), torch.tensor([[0., 1.], [2., 3.]]))
        tensor([[19., 25.],
                [37., 43.]])
    """
    image, kernel, to_numpy = arguments.to_common_tensors(x, k, ("x", "k"))
    arguments.check_ndim(image, "x", (2,), "2-D (H, W); use filter2d for stacks of images")
    arguments.check_ndim(kernel, "k", (2,), "2-D (h, w)")
    arguments.check_not_empty(image.shape, "x")
    arguments.check_not_empty(kernel.shape, "k")
    arguments.fits_or_raise(
        (image.shape[0], image.shape[1]),
        (kernel.shape[0], kernel.shape[1]),
        "use xcorr.filter2d(x, k, mode='same') or pad the input",
    )
    y = correlate(image[None, None], kernel[None, None])
    return _hand_back(y[0, 0], to_numpy)


@overload
def filter2d(
    image: Tensor,
    kernel: ArrayLike,
    *,
    mode: str = ...,
    boundary: str = ...,
    cval: float = ...,
    channel_axis: int | None = ...,
    dtype: object = ...,
    out: Tensor | None = ...,
    algo: str = ...,
) -> Tensor: ...
@overload
def filter2d(
    image: NumpyLike,
    kernel: NumpyLike,
    *,
    mode: str = ...,
    boundary: str = ...,
    cval: float = ...,
    channel_axis: int | None = ...,
    dtype: object = ...,
    out: np.ndarray | None = ...,
    algo: str = ...,
) -> np.ndarray: ...
@overload
def filter2d(
    image: ArrayLike,
    kernel: ArrayLike,
    *,
    mode: str = ...,
    boundary: str = ...,
    cval: float = ...,
    channel_axis: int | None = ...,
    dtype: object = ...,
    out: Result | None = ...,
    algo: str = ...,
) -> Result: ...
def filter2d(
    image: ArrayLike,
    kernel: ArrayLike,
    *,
    mode: str = "same",
    boundary: str = "constant",
    cval: float = 0.0,
    channel_axis: int | None = None,
    dtype: object = None,
    out: Result | None = None,
    algo: str = "auto",
) -> Result:
    """Cross-correlate every (H, W) slice of ``image`` with one 2-D ``kernel``, as an image filter.

    Args:
        image: (H, W) or (..., H, W); every leading slice is filtered with the same kernel. Any real dtype:
            integers are computed in float32; uint8 and uint16 photos are read as they are (no float copy) where
            the planner runs the direct or FFT algorithm.
        kernel: (kh, kw). Correlation, not convolution: flip the kernel (``kernel[::-1, ::-1]``) to convolve.
        mode: output size, exactly as ``scipy.signal.correlate2d``: ``"valid"`` (H - kh + 1, W - kw + 1),
            ``"same"`` (H, W), centred as SciPy centres it, even kernels included, or ``"full"``
            (H + kh - 1, W + kw - 1).
        boundary: how the image extends past its edge, by ``numpy.pad``'s names: ``"constant"`` (``cval``),
            ``"reflect"`` (d c b | a b c d | c b a), ``"symmetric"`` (c b a | a b c | c b a), ``"edge"``,
            ``"wrap"``. The result equals ``numpy.pad`` followed by a valid correlation.
        cval: the value outside the image for ``boundary="constant"``.
        channel_axis: scikit-image's convention: the axis holding colour channels (``-1`` for (H, W, 3) photos
            as Pillow, imageio and OpenCV give them), each channel filtered with the kernel and kept where it
            was; the spatial axes are the last two other axes. ``None``: the last two axes are spatial (an
            (H, W, 3|4) image then gets a :class:`xcorr.ChannelsLastWarning`).
        dtype: the result's dtype (NumPy or torch; ``None``: the inputs' promotion, integers -> float32). A float
            dtype is also the one computed in; an integer dtype gets each value rounded half to even and
            saturated to its range, as OpenCV's ``ddepth=-1`` (NaN -> the dtype's minimum).
        out: an array (NumPy result) or tensor (torch result) of the result's shape to write into; its dtype is
            the result's when ``dtype`` is None. Returned. Not with inputs that require grad.
        algo: ``"auto"`` or a name from :func:`xcorr.algorithms`.

    Returns:
        (..., Ho, Wo), with the channel axis where ``channel_axis`` says; NumPy when both inputs are NumPy.

    Example:
        >>> import numpy as np
        >>> filter2d(np.eye(3), np.array([[1.0, 1.0]]), mode="same", boundary="wrap")
        array([[1., 1., 0.],
               [0., 1., 1.],
               [1., 0., 1.]])
        >>> photo = np.full((4, 5, 3), 200, np.uint8)
        >>> filter2d(photo, np.full((3, 3), 0.2), channel_axis=-1, dtype=np.uint8)[0, 0]
        array([160, 160, 160], dtype=uint8)
    """
    key = None if out is not None else filter_key(image, kernel, (mode, boundary, cval, channel_axis, dtype, algo))
    route = FILTER_ROUTES.get(key)
    if route is not None:
        return route(image, kernel)
    if not isinstance(image, Tensor):
        image = np.asarray(image)
    axis = arguments.check_channel_axis(channel_axis, image.ndim)
    channels_last = axis == image.ndim - 1  # filtered in place, as rows of interleaved samples
    if axis is None:
        arguments.warn_if_channels_last(tuple(image.shape))
    elif not channels_last:
        image = image.movedim(axis, -3) if isinstance(image, Tensor) else np.moveaxis(image, axis, -3)
    tensors = [a for a in (image, kernel) if isinstance(a, Tensor)]
    where = results.destination(
        dtype,
        out,
        numpy=not tensors,
        requires_grad=torch.is_grad_enabled() and any(t.requires_grad for t in tensors),
    )
    x, k, to_numpy = arguments.to_common_tensors(
        image, kernel, ("image", "kernel"), where.compute_dtype, keep_samples=True
    )
    arguments.check_ndim(x, "image", range(2, 64), "(H, W) or (..., H, W)")
    arguments.check_ndim(k, "kernel", (2,), "2-D (kh, kw)")
    mode = arguments.check_mode(mode)
    boundary = arguments.check_boundary(boundary)
    cval = arguments.check_cval(cval)
    samples = x.shape[-1] if channels_last else 1
    spatial = x.ndim - (3 if channels_last else 2)
    (h, w), (kh, kw) = x.shape[spatial : spatial + 2], k.shape
    arguments.check_not_empty((h, w), "image")
    arguments.check_not_empty((kh, kw), "kernel")
    if mode == "valid":
        arguments.fits_or_raise((h, w), (kh, kw), "use mode='same' or pad the input")
    leading = x.shape[:spatial]
    top, bottom, left, right = arguments.mode_padding(mode, (kh, kw))
    size = (h + top + bottom - kh + 1, w + left + right - kw + 1)
    computed = (*leading, *size, samples) if channels_last else (*leading, *size)
    results.check_out_shape(where, computed if channels_last else _channel_moved_back(computed, axis))
    rows, k4 = x.reshape(-1, 1, h, w * samples), k[None, None]
    padding, dilation = (top, bottom, left * samples, right * samples), (1, samples)
    runner = plain_runner(
        rows, k4, padding=padding, boundary=boundary, cval=cval, samples=samples, dilation=dilation, algo=algo
    )
    if runner is not None:
        y = runner(rows, k4, None, where.rounded_in_kernels)
    else:
        y = correlate_extended(
            rows,
            k4,
            padding=padding,
            boundary=boundary,
            cval=cval,
            dilation=dilation,
            algo=algo,
            samples=samples,
            result_dtype=where.rounded_in_kernels,
        )
    moved_axis = None if channels_last else axis
    if key is not None and not FILTER_ROUTES.knows(key):
        route = None
        if runner is not None:
            shape = (rows.shape[0], 1, h, w * samples)
            route = FilterRoute(x.dtype, k.dtype, moved_axis, shape, computed, runner, where, to_numpy)
        FILTER_ROUTES.remember(key, route)
    return results.hand_back(y.reshape(computed), where, moved_axis, to_numpy)


def _channel_moved_back(shape: tuple[int, ...], axis: int | None) -> tuple[int, ...]:
    """The shape (..., C, Ho, Wo) with C moved to ``axis``, as the caller lays the image out."""
    if axis is None:
        return shape
    rest = [*shape[:-3], *shape[-2:]]
    return (*rest[:axis], shape[-3], *rest[axis:])


_Pair = int | tuple[int, ...]  # (h, w), or (s,) for both, as torch


@overload
def conv2d(
    input: Tensor,
    weight: ArrayLike,
    bias: ArrayLike | None = ...,
    stride: _Pair = ...,
    padding: _Pair | str = ...,
    dilation: _Pair = ...,
    groups: int = ...,
    padding_mode: str = ...,
    *,
    algo: str = ...,
) -> Tensor: ...
@overload
def conv2d(
    input: NumpyLike,
    weight: NumpyLike,
    bias: NumpyLike | None = ...,
    stride: _Pair = ...,
    padding: _Pair | str = ...,
    dilation: _Pair = ...,
    groups: int = ...,
    padding_mode: str = ...,
    *,
    algo: str = ...,
) -> np.ndarray: ...
@overload
def conv2d(
    input: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = ...,
    stride: _Pair = ...,
    padding: _Pair | str = ...,
    dilation: _Pair = ...,
    groups: int = ...,
    padding_mode: str = ...,
    *,
    algo: str = ...,
) -> Result: ...
def conv2d(
    input: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    stride: _Pair = 1,
    padding: _Pair | str = 0,
    dilation: _Pair = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    *,
    algo: str = "auto",
) -> Result:
    """``torch.nn.functional.conv2d``, computed by xcorr's planner (a cross-correlation, as in torch).

    Args:
        input: (N, C, H, W) or unbatched (C, H, W).
        weight: (O, C // groups, kh, kw).
        bias: optional (O,).
        stride, dilation: int or (h, w) pair, at least 1.
        padding: int, (h, w) pair, ``"valid"`` or ``"same"`` (stride 1 only; for even kernels the extra row
            and column go at the bottom and right, as torch).
        groups: input and output channels split into this many groups.
        padding_mode: as ``torch.nn.Conv2d``: ``"zeros"``, ``"reflect"``, ``"replicate"``, ``"circular"``
            (any padding width, extended as ``numpy.pad`` does).
        algo: ``"auto"`` or a name from :func:`xcorr.algorithms`.

    Returns:
        (N, O, Ho, Wo), or (O, Ho, Wo) for unbatched input, with ``Ho = (H + 2 * pad_h - dilation_h * (kh - 1)
        - 1) // stride_h + 1``. An empty batch (N = 0) gives an empty result.

    Example:
        >>> import torch
        >>> conv2d(torch.ones(1, 1, 6, 8), torch.tensor([[[[-1.0, 1.0]]]])).shape
        torch.Size([1, 1, 6, 7])
    """
    settings = (stride, padding, dilation, groups, padding_mode, algo)
    key = _route_key(input, weight, bias, settings)
    route = _TORCH_ROUTES.get(key)
    if route is not None:
        return route(input, weight, bias)
    x, w, to_numpy = arguments.to_common_tensors(input, weight, ("input", "weight"))
    arguments.check_ndim(x, "input", (3, 4), "(N, C, H, W) or unbatched (C, H, W)")
    arguments.check_ndim(w, "weight", (4,), "(out_channels, in_channels // groups, kh, kw)")
    unbatched = x.ndim == 3
    if unbatched:
        x = x[None]
    groups, stride_pair, dilation_pair, padding_quad, boundary = _checked_geometry(
        x, w, stride, padding, dilation, groups, padding_mode
    )
    b = None
    if bias is not None:
        b, _, _ = arguments.to_common_tensors(bias, w, ("bias", "weight"))
        if b.shape != (w.shape[0],):
            raise ValueError(f"bias must have shape ({w.shape[0]},) to match the weight, got {tuple(b.shape)}")
    y = correlate_extended(
        x,
        w,
        padding=padding_quad,
        boundary=boundary,
        bias=b,
        stride=stride_pair,
        dilation=dilation_pair,
        groups=groups,
        algo=algo,
    )
    if key is not None and not _TORCH_ROUTES.knows(key):
        unchanged = x is input and w is weight and (bias is None or (b is bias and bias.dtype == x.dtype))
        geometry = (stride_pair, padding_quad, dilation_pair, groups)
        _TORCH_ROUTES.remember(
            key, _torch_route(x, w, geometry, algo) if unchanged and boundary == "constant" else None
        )
    return _hand_back(y[0] if unbatched else y, to_numpy)


_TORCH_ROUTES: Routes[Callable[..., Tensor]] = Routes()
"""``conv2d`` calls on plain 4-D tensors that torch's own kernel runs throughout: torch's ``conv2d`` with the
checked geometry, by call key (:func:`_route_key`). A layer in a loop then pays a key and a lookup."""


def _route_key(input: object, weight: object, bias: object, settings: tuple[object, ...]) -> tuple[object, ...] | None:
    """Everything that decides a ``conv2d`` call's route, or ``None`` where it is not remembered (NumPy or
    subclassed tensors, not 4-D, unhashable settings, compiling, jit tracing or ``torch.func`` transforms)."""
    if type(input) not in PLAIN_TYPES or type(weight) not in PLAIN_TYPES or traced_now():
        return None
    if torch._C._are_functorch_transforms_active():
        return None
    x, w = cast(Tensor, input), cast(Tensor, weight)
    if x.ndim != 4 or w.ndim != 4 or not all(map(_hashable, settings)):
        return None
    b = cast("Tensor | None", bias)
    if b is not None and type(b) not in PLAIN_TYPES:
        return None
    grad = torch.is_grad_enabled() and (x.requires_grad or w.requires_grad or (b is not None and b.requires_grad))
    return (
        routes.tensor_key(x, w),
        None if b is None else (b.shape, b.dtype),
        grad,
        torch.is_autocast_enabled(x.device.type),
        settings,
    )


def _torch_route(
    x: Tensor, w: Tensor, geometry: tuple[Pair, Quad, Pair, int], algo: str
) -> Callable[[Tensor, Tensor, Tensor | None], Tensor] | None:
    """torch's ``conv2d`` with this geometry where the engine would run the call on it throughout (symmetric
    zero padding, :func:`xcorr.autograd.runs_torch_kernel`), else ``None``."""
    stride, quad, dilation, groups = geometry
    top, bottom, left, right = quad
    if top != bottom or left != right:
        return None
    if not runs_torch_kernel(x, w, stride=stride, padding=quad, dilation=dilation, groups=groups, algo=algo):
        return None
    padding = (top, left)
    return lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation, groups)


def _checked_geometry(
    x: Tensor, w: Tensor, stride: object, padding: object, dilation: object, groups: object, padding_mode: object
) -> tuple[int, Pair, Pair, Quad, str]:
    """:func:`_conv_geometry` for these tensors' shapes, memoised where the settings are hashable."""
    settings = (stride, padding, dilation, groups, padding_mode)
    geometry = _conv_geometry if all(map(_hashable, settings)) else _conv_geometry.__wrapped__
    return geometry(tuple(x.shape), tuple(w.shape), *settings)


def _hashable(value: object) -> bool:
    return isinstance(value, (int, str, tuple))


@functools.lru_cache(maxsize=1024)
def _conv_geometry(
    input_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    stride: object,
    padding: object,
    dilation: object,
    groups: object,
    padding_mode: object,
) -> tuple[int, Pair, Pair, Quad, str]:
    """``conv2d``'s checked groups, stride, dilation, (top, bottom, left, right) padding and boundary.

    Depends on shapes and settings only, so a layer called in a loop checks them once (memoised when the
    settings are hashable). Raises the argument errors ``conv2d`` documents.
    """
    arguments.check_not_empty(weight_shape[2:], "weight")
    # In the order of the signature, so that the first wrong argument is the one named, as torch does.
    stride_pair = arguments.pair(stride, "stride", minimum=1)
    if not isinstance(padding, str):
        arguments.pair(padding, "padding", minimum=0)
    dilation_pair = arguments.pair(dilation, "dilation", minimum=1)
    padding_quad = arguments.conv_padding(padding, (weight_shape[2], weight_shape[3]), dilation_pair, stride_pair)
    checked_groups = arguments.check_groups(groups, input_shape[1], weight_shape)
    boundary = arguments.check_padding_mode(padding_mode)
    top, bottom, left, right = padding_quad
    padded = (input_shape[2] + top + bottom, input_shape[3] + left + right)
    extent = (dilation_pair[0] * (weight_shape[2] - 1) + 1, dilation_pair[1] * (weight_shape[3] - 1) + 1)
    if extent[0] > padded[0] or extent[1] > padded[1]:
        raise ValueError(
            f"padded input {padded[0]}x{padded[1]} is smaller than the dilated kernel {extent[0]}x{extent[1]}; "
            "pass more padding or a smaller kernel"
        )
    return checked_groups, stride_pair, dilation_pair, padding_quad, boundary
