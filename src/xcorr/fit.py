"""Fitting a kernel (and bias) to (input, output) pairs: closed-form least squares, or the notebook's descent.

The least-squares normal equations are built from correlations, never from an im2col matrix, so they scale
to megapixel images: for a kernel of T = h * w taps, with ``X_t`` the window of ``x`` that tap t sees,

- ``(A^T y)_t = sum(X_t * y)``, i.e. ``corr2d(x, y)``;
- ``(A^T A)_{t, s} = sum(X_t * X_s)``, i.e. ``x`` correlated with each of its own T windows (one batched call);
- with a bias, one more unknown whose column is all ones: ``corr2d(x, ones)`` and the pixel count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from xcorr import arguments
from xcorr.arguments import ArrayLike, Result
from xcorr.autograd import correlate
from xcorr.nn import LazyConv2d

METHODS = ("lstsq", "gd")

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
    """

    kernel: Result
    bias: float
    loss: float
    history: list[float] = field(default_factory=list)


def _pairs(x: ArrayLike, y: ArrayLike, kernel_size: tuple[int, int]) -> tuple[Tensor, Tensor, bool]:
    """x (B, 1, H, W) and y (B, 1, Ho, Wo), float, checked against each other and the kernel size."""
    xs, ys, to_numpy = arguments.to_common_tensors(x, y, ("x", "y"))
    arguments.check_ndim(xs, "x", range(2, 64), "(H, W) or a stack (..., H, W) of inputs")
    h, w = arguments.pair(kernel_size, "kernel_size", minimum=1)
    expected = (*xs.shape[:-2], xs.shape[-2] - h + 1, xs.shape[-1] - w + 1)
    if tuple(ys.shape) != expected:
        raise ValueError(
            f"y has shape {tuple(ys.shape)}, but a {h}x{w} kernel on x of shape {tuple(xs.shape)} gives "
            f"{expected} in 'valid' mode; check kernel_size, or crop y to the valid region"
        )
    arguments.check_not_empty(xs.shape[-2:], "x")
    arguments.fits_or_raise((xs.shape[-2], xs.shape[-1]), (h, w), "use a smaller kernel_size")
    return xs.reshape(-1, 1, *xs.shape[-2:]), ys.reshape(-1, 1, *ys.shape[-2:]), to_numpy


def _normal_equations(x: Tensor, y: Tensor, kernel_size: tuple[int, int], bias: bool) -> tuple[Tensor, Tensor]:
    """``A^T A`` (T', T') and ``A^T y`` (T',) in float64, T' = taps (+1 with a bias)."""
    h, w = kernel_size
    ho, wo = y.shape[-2:]
    channels = x.reshape(1, -1, *x.shape[-2:]).to(torch.float64)  # pairs as channels: the correlation sums them
    targets = y.reshape(1, -1, ho, wo).to(channels)
    taps = [(p, q) for p in range(h) for q in range(w)]
    per_call = max(1, WINDOW_BYTES_PER_CALL // (channels.shape[1] * ho * wo * 8))
    rows = []
    for start in range(0, len(taps), per_call):
        windows = torch.stack([channels[0, :, p : p + ho, q : q + wo] for p, q in taps[start : start + per_call]])
        rows.append(correlate(channels, windows).reshape(len(windows), h * w))
    gram = torch.cat(rows)
    rhs = correlate(channels, targets).reshape(h * w)
    if bias:
        sums = correlate(channels, torch.ones_like(targets)).reshape(h * w, 1)
        count = torch.tensor([[float(targets.numel())]], dtype=torch.float64, device=channels.device)
        gram = torch.cat([torch.cat([gram, sums], 1), torch.cat([sums.T, count], 1)])
        rhs = torch.cat([rhs, targets.sum().reshape(1)])
    return gram, rhs


def _lstsq(x: Tensor, y: Tensor, kernel_size: tuple[int, int], bias: bool, ridge: float) -> tuple[Tensor, float]:
    gram, rhs = _normal_equations(x, y, kernel_size, bias)
    regulariser = torch.eye(len(rhs), dtype=gram.dtype, device=gram.device) * ridge
    if bias:
        regulariser[-1, -1] = 0.0  # the bias is not shrunk
    solution = torch.linalg.lstsq((gram + regulariser).cpu(), rhs.cpu()[:, None], driver="gelsd").solution[:, 0]
    taps = kernel_size[0] * kernel_size[1]
    return solution[:taps].reshape(kernel_size).to(x), float(solution[taps]) if bias else 0.0


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
    method: str = "lstsq",
    ridge: float = 0.0,
    lr: float = 3e-2,
    steps: int = 10,
    callback: Callable[[int, float], None] | None = None,
) -> FitResult:
    """The kernel (and bias) with ``corr2d(x, kernel) + bias ≈ y``.

    Args:
        x: input (H, W), or a stack (..., H, W) of inputs sharing one kernel.
        y: output (H - h + 1, W - w + 1), or the matching stack.
        kernel_size: h, or (h, w).
        bias: also fit a scalar offset.
        method: ``"lstsq"``: the least-squares solution, in closed form (float64 normal equations built from
            correlations, solved with an SVD-based solver, so a rank-deficient input gets the minimum-norm
            kernel). ``"gd"``: the notebook's gradient descent (``steps`` updates of size ``lr`` on the summed
            squared error, from ``torch.nn.LazyConv2d``'s random initialisation; seed torch to repeat it).
        ridge: ``"lstsq"`` only: adds ``ridge * ||kernel||^2`` to the loss (the bias is not penalised).
        lr, steps: ``"gd"`` only.
        callback: ``"gd"`` only: called as ``callback(step, loss)`` after each update (progress bars).

    Returns:
        :class:`FitResult` with ``kernel`` (h, w) in the inputs' float dtype, ``bias``, ``loss`` and ``history``.

    Example:
        >>> import numpy as np, xcorr
        >>> x = np.random.default_rng(0).random((32, 32))
        >>> y = xcorr.corr2d(x, np.array([[-1.0, 1.0]]))
        >>> np.round(fit_kernel(x, y, (1, 2)).kernel, 6)
        array([[-1.,  1.]])
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}")
    size = arguments.pair(kernel_size, "kernel_size", minimum=1)
    xs, ys, to_numpy = _pairs(x, y, size)
    history: list[float] = []
    if method == "lstsq":
        if not ridge >= 0:
            raise ValueError(f"ridge must be a non-negative number, got {ridge!r}")
        kernel, b = _lstsq(xs, ys, size, bias, ridge)
    else:
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be a positive int, got {steps!r}")
        kernel, b, history = _descend(xs, ys, size, bias, lr, steps, callback)
    with torch.no_grad():
        residual = correlate(xs, kernel[None, None]) + b - ys
        loss = float((residual.double() ** 2).sum())
    return FitResult(kernel.cpu().numpy() if to_numpy else kernel, b, loss, history)
