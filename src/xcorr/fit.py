"""Fitting a kernel (and bias) to (input, output) pairs: closed-form least squares, or the notebook's descent.

The least-squares normal equations are never built from an im2col matrix, so they scale to megapixel images:
for a kernel of T = h * w taps, with ``X_t`` the window of ``x`` that tap t sees,

- ``(A^T y)_t = sum(X_t * y)``, i.e. ``corr2d(x, y)`` (a weight-gradient-shaped correlation, planned);
- ``(A^T A)_{t, s} = sum(X_t * X_s)``: on CPU by lags (:mod:`xcorr.lags`, one pass over the image per lag, since
  taps at the same lag share all but thin border strips), elsewhere ``x`` correlated with its own T windows;
- with a bias, one more unknown whose column is all ones: the window sums (:func:`xcorr.lags.window_sums`) and the
  pixel count.

An output ``y`` of the input's own size (a filter applied in "same" mode) is fitted on the pixels whose window lies
inside ``x``; which kernel tap sits on the output pixel (the *anchor*) is a convention that differs between
libraries for even kernel sizes. Every candidate anchor shares one ``A^T A``: only ``A^T y`` is recomputed, so
finding the anchor costs one extra correlation per candidate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import product

import torch
from torch import Tensor

from xcorr import arguments, lags
from xcorr.arguments import ArrayLike, Result
from xcorr.autograd import correlate
from xcorr.nn import LazyConv2d

METHODS = ("lstsq", "gd")
ANCHORS = ("auto", "scipy", "center")

# Bytes of window stack the closed form builds at once; more taps are processed in several calls.
WINDOW_BYTES_PER_CALL = 64 * 2**20


@dataclass(frozen=True)
class FitResult:
    """What :func:`fit_kernel` found.

    Attributes:
        kernel: (h, w), NumPy when the inputs were NumPy, else a detached torch tensor.
        bias: the fitted scalar (0.0 when ``bias=False``).
        loss: sum of squared residuals ``sum((corr2d(x, kernel) + bias - y) ** 2)`` over all pairs (the
            notebook's loss).
        history: the loss before each update, for ``method="gd"`` (empty for ``"lstsq"``).
        anchor: for a ``y`` of ``x``'s size, the (row, column) of the kernel tap that sits on each output pixel;
            ``None`` for a "valid"-size ``y``.
    """

    kernel: Result
    bias: float
    loss: float
    history: list[float] = field(default_factory=list)
    anchor: tuple[int, int] | None = None


def candidate_anchors(anchor: object, kernel_size: tuple[int, int]) -> list[tuple[int, int]]:
    """The anchors to try for a "same"-size output: ``(row, col)``, a convention's name, or every convention.

    ``"scipy"`` is ``((h - 1) // 2, (w - 1) // 2)``, the anchor of ``scipy.signal.correlate2d(mode="same")`` and
    :func:`xcorr.filter2d`; ``"center"`` is ``(h // 2, w // 2)``, that of ``scipy.ndimage.correlate`` and
    ``cv2.filter2D`` (default anchor); ``"auto"`` tries both along each axis (they differ for even sizes only).

    Example:
        >>> candidate_anchors("auto", (4, 3))
        [(1, 1), (2, 1)]
    """
    h, w = kernel_size
    if anchor == "scipy":
        return [((h - 1) // 2, (w - 1) // 2)]
    if anchor == "center":
        return [(h // 2, w // 2)]
    if anchor == "auto":
        return list(product(dict.fromkeys(((h - 1) // 2, h // 2)), dict.fromkeys(((w - 1) // 2, w // 2))))
    if isinstance(anchor, str):
        raise ValueError(f"anchor must be one of {', '.join(map(repr, ANCHORS))} or (row, col), got {anchor!r}")
    row, col = arguments.pair(anchor, "anchor", minimum=0)
    if row >= h or col >= w:
        raise ValueError(f"anchor {(row, col)} is outside the {h}x{w} kernel; use 0 <= row < {h}, 0 <= col < {w}")
    return [(row, col)]


def _pairs(
    x: ArrayLike, y: ArrayLike, kernel_size: tuple[int, int], anchor: object
) -> tuple[Tensor, list[Tensor], list[tuple[int, int]] | None, bool]:
    """x (B, 1, H, W), the valid-size targets (B, 1, Ho, Wo) for each candidate anchor, those anchors, NumPy out."""
    xs, ys, to_numpy = arguments.to_common_tensors(x, y, ("x", "y"))
    arguments.check_ndim(xs, "x", range(2, 64), "(H, W) or a stack (..., H, W) of inputs")
    h, w = kernel_size
    ho, wo = xs.shape[-2] - h + 1, xs.shape[-1] - w + 1
    valid = (*xs.shape[:-2], ho, wo)
    anchors = candidate_anchors(anchor, kernel_size)  # checks ``anchor`` whatever y's size
    if tuple(ys.shape) not in (valid, tuple(xs.shape)):
        raise ValueError(
            f"y has shape {tuple(ys.shape)}, but a {h}x{w} kernel on x of shape {tuple(xs.shape)} gives "
            f"{valid} in 'valid' mode, or x's own shape in 'same' mode; check kernel_size, or crop y"
        )
    arguments.check_not_empty(xs.shape[-2:], "x")
    arguments.fits_or_raise((xs.shape[-2], xs.shape[-1]), (h, w), "use a smaller kernel_size")
    xs = xs.reshape(-1, 1, *xs.shape[-2:])
    ys = ys.reshape(-1, 1, *ys.shape[-2:])
    if tuple(ys.shape[-2:]) == (ho, wo) and (ho, wo) != tuple(xs.shape[-2:]):
        return xs, [ys], None, to_numpy
    return xs, [ys[..., r : r + ho, c : c + wo] for r, c in anchors], anchors, to_numpy


def _normal_equations(
    x: Tensor, ys: list[Tensor], kernel_size: tuple[int, int], bias: bool
) -> tuple[Tensor, list[Tensor]]:
    """``A^T A`` (T', T') and ``A^T y`` (T',) for each target, in float64, T' = taps (+1 with a bias)."""
    h, w = kernel_size
    ho, wo = ys[0].shape[-2:]
    channels = x.reshape(1, -1, *x.shape[-2:]).to(torch.float64)  # pairs as channels: the correlation sums them
    gram = _window_gram(channels, kernel_size)
    targets = [y.reshape(1, -1, ho, wo).to(channels) for y in ys]
    rhs = [correlate(channels, t).reshape(h * w) for t in targets]
    if bias:
        sums = _window_sums(channels, kernel_size).reshape(h * w, 1)
        count = torch.tensor([[float(targets[0].numel())]], dtype=torch.float64, device=channels.device)
        gram = torch.cat([torch.cat([gram, sums], 1), torch.cat([sums.T, count], 1)])
        rhs = [torch.cat([r, t.sum().reshape(1)]) for r, t in zip(rhs, targets, strict=True)]
    return gram, rhs


def _window_gram(channels: Tensor, kernel_size: tuple[int, int]) -> Tensor:
    """``A^T A`` (T, T) of the images in ``channels`` (1, B, H, W) float64: by lags on CPU (:mod:`xcorr.lags`),
    elsewhere as correlations of the images with their own windows, a bounded number of windows per call."""
    if channels.device.type == "cpu":
        return torch.from_numpy(lags.window_gram(channels[0].contiguous().numpy(), kernel_size))
    h, w = kernel_size
    ho, wo = channels.shape[-2] - h + 1, channels.shape[-1] - w + 1
    taps = [(p, q) for p in range(h) for q in range(w)]
    per_call = max(1, WINDOW_BYTES_PER_CALL // (channels.shape[1] * ho * wo * 8))
    rows = []
    for start in range(0, len(taps), per_call):
        windows = torch.stack([channels[0, :, p : p + ho, q : q + wo] for p, q in taps[start : start + per_call]])
        rows.append(correlate(channels, windows).reshape(len(windows), h * w))
    return torch.cat(rows)


def _window_sums(channels: Tensor, kernel_size: tuple[int, int]) -> Tensor:
    """The sum of each tap's window over the images in ``channels`` (1, B, H, W) float64 (h * w values)."""
    if channels.device.type == "cpu":
        return torch.from_numpy(lags.window_sums(channels[0].contiguous().numpy(), kernel_size))
    ho, wo = channels.shape[-2] - kernel_size[0] + 1, channels.shape[-1] - kernel_size[1] + 1
    return correlate(channels, channels.new_ones((1, channels.shape[1], ho, wo)))


def _lstsq(
    x: Tensor, ys: list[Tensor], kernel_size: tuple[int, int], bias: bool, ridge: float
) -> list[tuple[Tensor, float]]:
    """The least-squares kernel and bias for each target in ``ys`` (one shared ``A^T A``)."""
    gram, rhs = _normal_equations(x, ys, kernel_size, bias)
    regulariser = torch.eye(len(rhs[0]), dtype=gram.dtype, device=gram.device) * ridge
    if bias:
        regulariser[-1, -1] = 0.0  # the bias is not shrunk
    right = torch.stack(rhs, 1).cpu()
    solutions = torch.linalg.lstsq((gram + regulariser).cpu(), right, driver="gelsd").solution
    taps = kernel_size[0] * kernel_size[1]
    return [
        (solution[:taps].reshape(kernel_size).to(x), float(solution[taps]) if bias else 0.0) for solution in solutions.T
    ]


def _loss(x: Tensor, y: Tensor, kernel: Tensor, bias: float) -> float:
    """``sum((corr2d(x, kernel) + bias - y) ** 2)`` over every pair, in float64."""
    with torch.no_grad():
        residual = correlate(x, kernel[None, None]).sub_(y).add_(bias)
        return float(torch.linalg.vector_norm(residual, dtype=torch.float64) ** 2)


def _descend(
    x: Tensor,
    y: Tensor,
    kernel_size: tuple[int, int],
    bias: bool,
    lr: float,
    steps: int,
    callback: Callable[[int, float], None] | None,
) -> tuple[Tensor, float, list[float]]:
    """The notebook's loop: a ``LazyConv2d`` (torch's initialisation), squared error summed, plain steps."""
    layer = LazyConv2d(1, kernel_size=kernel_size, bias=bias, device=x.device, dtype=x.dtype)
    history = []
    for step in range(steps):
        loss = ((layer(x) - y) ** 2).sum()
        layer.zero_grad()
        loss.backward()
        with torch.no_grad():
            for parameter in layer.parameters():
                if parameter.grad is not None:
                    parameter.sub_(lr * parameter.grad)
        history.append(loss.item())
        if callback is not None:
            callback(step + 1, history[-1])
    b = float(layer.bias.item()) if layer.bias is not None else 0.0
    return layer.weight.detach()[0, 0], b, history


def fit_kernel(
    x: ArrayLike,
    y: ArrayLike,
    kernel_size: int | tuple[int, int],
    *,
    bias: bool = False,
    anchor: str | tuple[int, int] = "auto",
    method: str = "lstsq",
    ridge: float = 0.0,
    lr: float = 3e-2,
    steps: int = 10,
    callback: Callable[[int, float], None] | None = None,
) -> FitResult:
    """The kernel (and bias) with ``corr2d(x, kernel) + bias ≈ y``.

    Args:
        x: input (H, W), or a stack (..., H, W) of inputs sharing one kernel.
        y: output (H - h + 1, W - w + 1) ("valid"), or (H, W) ("same": only the pixels whose window lies inside
            ``x`` are fitted), or the matching stack.
        kernel_size: h, or (h, w).
        bias: also fit a scalar offset.
        anchor: for a "same"-size ``y``, which kernel tap sits on each output pixel: ``(row, col)``,
            ``"scipy"`` (``scipy.signal.correlate2d``, :func:`xcorr.filter2d`: ``((h-1)//2, (w-1)//2)``),
            ``"center"`` (``scipy.ndimage``, OpenCV: ``(h//2, w//2)``), or ``"auto"``: the one of those that fits
            best (reported as ``FitResult.anchor``; they differ for even sizes only). Ignored for a "valid" ``y``.
        method: ``"lstsq"``: the least-squares solution, in closed form (float64 normal equations built from
            correlations, solved with an SVD-based solver, so a rank-deficient input gets the minimum-norm
            kernel). ``"gd"``: the notebook's gradient descent (``steps`` updates of size ``lr`` on the summed
            squared error, from ``torch.nn.LazyConv2d``'s random initialisation; seed torch to repeat it; with
            ``anchor="auto"`` the anchor is the one whose least-squares fit is best).
        ridge: ``"lstsq"`` only: adds ``ridge * ||kernel||^2`` to the loss (the bias is not penalised).
        lr, steps: ``"gd"`` only.
        callback: ``"gd"`` only: called as ``callback(step, loss)`` after each update (progress bars).

    Returns:
        :class:`FitResult` with ``kernel`` (h, w) in the inputs' float dtype, ``bias``, ``loss``, ``history``
        and ``anchor``.

    Example:
        >>> import numpy as np, xcorr
        >>> x = np.random.default_rng(0).random((32, 32))
        >>> y = xcorr.corr2d(x, np.array([[-1.0, 1.0]]))
        >>> np.round(fit_kernel(x, y, (1, 2)).kernel, 6)
        array([[-1.,  1.]])
        >>> import scipy.ndimage  # "same" size, the kernel anchored at its centre tap (0, 1)
        >>> fit_kernel(x, scipy.ndimage.correlate(x, np.array([[-1.0, 1.0]])), (1, 2)).anchor
        (0, 1)
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}")
    size = arguments.pair(kernel_size, "kernel_size", minimum=1)
    if method == "lstsq" and not ridge >= 0:
        raise ValueError(f"ridge must be a non-negative number, got {ridge!r}")
    if method == "gd" and (not isinstance(steps, int) or steps < 1):
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    xs, targets, anchors, to_numpy = _pairs(x, y, size, anchor)
    history: list[float] = []
    if method == "lstsq" or len(targets) > 1:
        fits = _lstsq(xs, targets, size, bias, ridge if method == "lstsq" else 0.0)
        losses = [_loss(xs, t, k, b) for t, (k, b) in zip(targets, fits, strict=True)]
        best = min(range(len(fits)), key=losses.__getitem__)
    else:
        best = 0
    target = targets[best]
    if method == "lstsq":
        (kernel, b), loss = fits[best], losses[best]
    else:
        kernel, b, history = _descend(xs, target, size, bias, lr, steps, callback)
        loss = _loss(xs, target, kernel, b)
    chosen = anchors[best] if anchors is not None else None
    return FitResult(kernel.cpu().numpy() if to_numpy else kernel, b, loss, history, chosen)
