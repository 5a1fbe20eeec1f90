"""``torch.ops.xcorr.correlate``: xcorr's zero-padded, strided, dilated, grouped correlation as a PyTorch operator.

Registered with ``torch.library``'s low-level ``Library`` API (the lowest dispatch overhead): one schema, one
implementation for CPU and CUDA that plans and runs on real data, a fake (meta) implementation that computes the
output's shape and layout only, an autograd kernel (at the ``Autograd`` key) that applies :class:`Correlation`
where a gradient is needed, whose backward runs both gradient products through the engine again, and a ``vmap``
rule. :class:`Correlation` is an ``autograd.Function`` with ``setup_context`` and ``vmap``, the form functorch
composes with; eager differentiable calls and ``torch.func`` transforms apply it directly. A repeated call's
planned forward product is remembered by call key (:mod:`xcorr.routes`). ``torch.compile``
therefore sees one opaque operator (no graph break, the planner never traced), ``torch.export`` records it, and
``torch.func.grad`` / ``vmap`` / ``jacrev`` compose with it.

Example:
    >>> import torch
    >>> x, w = torch.arange(9.0).reshape(1, 1, 3, 3), torch.ones(1, 1, 2, 2)
    >>> torch.ops.xcorr.correlate(x, w, [1, 1], [0, 0, 0, 0], [1, 1], 1, "auto")
    tensor([[[[ 8., 12.],
              [20., 24.]]]])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from xcorr.autograd import correlate_problem, problem_for, product_runner, traced
from xcorr.gradients import input_gradient, weight_gradient
from xcorr.planner import gradient_choices, plan_problem
from xcorr.problem import Problem, is_channels_last
from xcorr.routes import Routes, tensor_key

SCHEMA = "correlate(Tensor x, Tensor w, int[] stride, int[] padding, int[] dilation, int groups, str algo) -> Tensor"

_LIBRARY = torch.library.Library("xcorr", "DEF")
_LIBRARY.define(SCHEMA)


def _geometry(stride: list[int], padding: list[int], dilation: list[int]) -> dict[str, Any]:
    return {
        "stride": (stride[0], stride[1]),
        "padding": (padding[0], padding[1], padding[2], padding[3]),
        "dilation": (dilation[0], dilation[1]),
    }


_FORWARDS: Routes[Callable[[Tensor, Tensor], Tensor]] = Routes()
"""The planned forward product of each call key (:mod:`xcorr.routes`): a repeat costs one lookup."""


def _implementation(
    x: Tensor, w: Tensor, stride: list[int], padding: list[int], dilation: list[int], groups: int, algo: str
) -> Tensor:
    """Plan on the real tensors (the weight's rank included) and run the forward product."""
    key = (tensor_key(x, w), *stride, *padding, *dilation, groups, algo)
    run = _FORWARDS.get(key)
    if run is None:
        problem = problem_for(x, w, groups=groups, **_geometry(stride, padding, dilation))
        run = product_runner(plan_problem(problem, algo=algo).forward.algorithm, problem)
        _FORWARDS.remember(key, run)
    return run(x, w)


for _device in ("CPU", "CUDA"):
    _LIBRARY.impl("correlate", _implementation, _device)


def _shape_problem(
    x: Tensor, w: Tensor, stride: list[int], padding: list[int], dilation: list[int], groups: int
) -> Problem:
    """The :class:`Problem` from shapes alone (no weight rank: the gradient products never need it)."""
    return Problem(
        (x.shape[0], x.shape[1], x.shape[2], x.shape[3]),
        (w.shape[0], w.shape[1], w.shape[2], w.shape[3]),
        groups=groups,
        dtype=x.dtype,
        device=x.device.type,
        channels_last=is_channels_last(x),
        **_geometry(stride, padding, dilation),
    )


def _concrete(problem: Problem) -> Problem:
    """``problem`` with plain ints for sizes (symbolic ones, under dynamic-shape tracing, are specialised)."""
    return dataclasses.replace(
        problem,
        input_shape=tuple(int(s) for s in problem.input_shape),  # type: ignore[arg-type]
        weight_shape=tuple(int(s) for s in problem.weight_shape),  # type: ignore[arg-type]
    )


def _fake(
    x: Tensor, w: Tensor, stride: list[int], padding: list[int], dilation: list[int], groups: int, algo: str
) -> Tensor:
    shape = _shape_problem(x, w, stride, padding, dilation, groups).output_shape
    layout = torch.channels_last if is_channels_last(x) else torch.contiguous_format
    return torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=layout)


torch.library.register_fake("xcorr::correlate", _fake)


def _setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    x, w, stride, padding, dilation, groups, algo = inputs
    ctx.save_for_backward(x, w)
    ctx.geometry = (stride, padding, dilation, groups)
    ctx.algo = algo


def _backward(ctx: Any, dy: Tensor) -> tuple[Tensor | None, ...]:
    """Both gradient products, planned from shapes and run through the engine (differentiable again)."""
    x, w = ctx.saved_tensors
    problem = _shape_problem(x, w, *ctx.geometry)
    # The plan is picked while the backward graph is traced: symbolic sizes are specialised to plan on them
    for_input, for_weight = gradient_choices(_concrete(problem), ctx.algo)
    dy = dy.contiguous()
    dx = dw = None
    if ctx.needs_input_grad[0]:
        dx = input_gradient(dy, w, problem, for_input.algorithm, correlate_problem)
    if ctx.needs_input_grad[1]:
        dw = weight_gradient(x, dy, problem, for_weight.algorithm, correlate_problem)
    return dx, dw, None, None, None, None, None


def _autograd_kernel(
    x: Tensor, w: Tensor, stride: list[int], padding: list[int], dilation: list[int], groups: int, algo: str
) -> Tensor:
    """The operator's autograd kernel: :class:`Correlation` where a gradient is needed, else the kernel below
    autograd, called directly on real tensors (``torch.library.register_autograd`` would wrap every call and
    redispatch in Python, ~25 us)."""
    if torch.is_grad_enabled() and (x.requires_grad or w.requires_grad):
        return apply_correlation(x, w, stride, padding, dilation, groups, algo)
    if _real(x, w):
        return _implementation(x, w, stride, padding, dilation, groups, algo)
    with torch._C._AutoDispatchBelowAutograd():
        out: Tensor = _OPERATOR(x, w, stride, padding, dilation, groups, algo)
    return out


class Correlation(torch.autograd.Function):
    """The same formula as an ``autograd.Function`` that ``torch.func`` transforms compose with.

    In eager differentiable calls and under ``torch.func.grad`` / ``vmap`` / ``jacrev`` the engine calls
    ``Correlation.apply`` (with the operator's arguments) instead of the operator's own autograd kernel (lighter,
    and the form functorch composes with): its forward runs the operator below autograd, its backward is the
    operator's, and its ``vmap`` rule is the operator's.
    """

    @staticmethod
    def forward(
        x: Tensor, w: Tensor, stride: list[int], padding: list[int], dilation: list[int], groups: int, algo: str
    ) -> Tensor:
        if _real(x, w):  # eager: what the operator would dispatch to
            return _implementation(x, w, stride, padding, dilation, groups, algo)
        with torch._C._AutoDispatchBelowAutograd():
            out: Tensor = _OPERATOR(x, w, stride, padding, dilation, groups, algo)
        return out

    setup_context = staticmethod(_setup_context)
    backward = staticmethod(_backward)

    @staticmethod
    def vmap(info: Any, in_dims: tuple[int | None, ...], *args: Any) -> tuple[Tensor, int]:
        return _vmap(info, in_dims, *args)


def _vmap(
    info: Any,
    in_dims: tuple[int | None, ...],
    x: Tensor,
    w: Tensor,
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    groups: int,
    algo: str,
) -> tuple[Tensor, int]:
    """A batch of inputs joins the N axis; a batch of weights becomes extra groups (one per batch entry)."""
    x_dim, w_dim = in_dims[0], in_dims[1]
    correlate = torch.ops.xcorr.correlate.default
    if w_dim is None:
        assert x_dim is not None
        xs = x.movedim(x_dim, 0)
        y = correlate(xs.flatten(0, 1), w, stride, padding, dilation, groups, algo)
        return y.unflatten(0, (xs.shape[0], xs.shape[1])), 0
    ws = w.movedim(w_dim, 0)
    batch, o = ws.shape[0], ws.shape[1]
    xs = x.movedim(x_dim, 0) if x_dim is not None else x.expand(batch, *x.shape)
    n, c, h, width = xs.shape[1:]
    folded = xs.transpose(0, 1).reshape(n, batch * c, h, width)
    y = correlate(folded, ws.reshape(batch * o, *ws.shape[2:]), stride, padding, dilation, groups * batch, algo)
    return y.reshape(n, batch, o, *y.shape[-2:]).transpose(0, 1), 0


torch.library.register_vmap("xcorr::correlate", _vmap)


def apply_correlation(
    x: Tensor, w: Tensor, stride: list[int], padding: list[int], dilation: list[int], groups: int, algo: str
) -> Tensor:
    """``Correlation.apply`` with every argument given: outside ``torch.func`` transforms, straight to autograd's
    own ``apply``, skipping the ``inspect.signature`` binding of defaults that ``Function.apply`` does on every
    call of a function with ``setup_context`` (tens of microseconds; there are no defaults to bind here)."""
    if torch._C._are_functorch_transforms_active():
        out: Tensor = Correlation.apply(x, w, stride, padding, dilation, groups, algo)
    else:
        out = _AUTOGRAD_APPLY(x, w, stride, padding, dilation, groups, algo)
    return out


_AUTOGRAD_APPLY = super(torch.autograd.Function, Correlation).apply


def _real(x: Tensor, w: Tensor) -> bool:
    """Plain tensors outside any transform or trace: the implementation may run here and read their data."""
    return not torch._C._are_functorch_transforms_active() and not traced(x, w)


_OPERATOR = torch.ops.xcorr.correlate.default
_LIBRARY.impl("correlate", _autograd_kernel, "Autograd")
