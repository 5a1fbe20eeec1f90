"""The differentiable engine: plan a correlation, run it, and run both backward products through the same engine.

:func:`correlate` is what every public function calls. Under autograd it goes through one
``torch.autograd.Function`` whose backward computes the input and weight gradients as correlations
(:mod:`xcorr.gradients`) chosen by the planner, so training uses the fast paths; those products call
:func:`correlate` again, so higher derivatives work too.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from xcorr import lowrank
from xcorr.algo import get_algorithm
from xcorr.gradients import input_gradient, weight_gradient
from xcorr.planner import Plan, choose_exact, plan_problem
from xcorr.problem import Pair, Problem, Quad


def problem_for(x: Tensor, w: Tensor, *, stride: Pair, padding: Quad, dilation: Pair, groups: int) -> Problem:
    """The :class:`Problem` for tensors ``x`` (N, C, H, W) and ``w`` (O, C // groups, kh, kw).

    Records the weight's numerical rank when it could change the plan (see :mod:`xcorr.lowrank`).
    """
    problem = Problem(
        (x.shape[0], x.shape[1], x.shape[2], x.shape[3]),
        (w.shape[0], w.shape[1], w.shape[2], w.shape[3]),
        stride,
        padding,
        dilation,
        groups,
        x.dtype,
        x.device.type,
    )
    if lowrank.rank_is_relevant(problem):
        return Problem(**{**problem.__dict__, "weight_rank": lowrank.weight_rank(w)})
    return problem


def _run(name: str, x: Tensor, w: Tensor, problem: Problem) -> Tensor:
    """Run one product. NaN and Inf must stay where a direct sum puts them, but a transform smears them over
    every output: on non-finite data an inexact algorithm hands over to the best exact one."""
    n, o, ho, wo = problem.output_shape
    if n * o * ho * wo == 0 or problem.input_shape[1] == 0:
        return x.new_zeros((n, o, ho, wo))
    algorithm = get_algorithm(name)
    with torch.no_grad():
        if not algorithm.exact and not bool(torch.isfinite(x.sum() + w.sum())):
            algorithm = get_algorithm(choose_exact(problem).algorithm)
        return algorithm.run(x.contiguous(), w.contiguous(), problem)


class Correlation(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, w: Tensor, plan: Plan, algo: str) -> Tensor:
        ctx.save_for_backward(x, w)
        ctx.plan, ctx.algo = plan, algo
        return _run(plan.forward.algorithm, x, w, plan.problem)

    @staticmethod
    def backward(ctx: Any, dy: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
        x, w = ctx.saved_tensors
        plan: Plan = ctx.plan
        assert plan.grad_input is not None and plan.grad_weight is not None  # planned with requires_grad
        dy = dy.contiguous()
        dx = dw = None
        if ctx.needs_input_grad[0]:
            dx = input_gradient(dy, w, plan.problem, plan.grad_input.algorithm, _correlate_problem)
        if ctx.needs_input_grad[1]:
            dw = weight_gradient(x, dy, plan.problem, plan.grad_weight.algorithm, _correlate_problem)
        return dx, dw, None, None


def _correlate_problem(x: Tensor, w: Tensor, problem: Problem, algo: str) -> Tensor:
    requires_grad = torch.is_grad_enabled() and (x.requires_grad or w.requires_grad)
    plan = plan_problem(problem, requires_grad=requires_grad, algo=algo)
    if not requires_grad:
        return _run(plan.forward.algorithm, x, w, problem)
    out: Tensor = Correlation.apply(x, w, plan, algo)
    return out


def correlate(
    x: Tensor,
    w: Tensor,
    *,
    stride: Pair = (1, 1),
    padding: Quad = (0, 0, 0, 0),
    dilation: Pair = (1, 1),
    groups: int = 1,
    algo: str = "auto",
) -> Tensor:
    """Differentiable ``y = corr(zero_pad(x), w)``: the engine under every public function.

    Args:
        x: (N, C, H, W) float tensor.
        w: (O, C // groups, kh, kw), same dtype and device as ``x``.
        stride, dilation: pairs of positive ints; padding: zeros (top, bottom, left, right).
        groups: channel groups, as ``torch.nn.functional.conv2d``.
        algo: ``"auto"`` (the planner decides) or a name from :func:`xcorr.algorithms`.

    Returns:
        y: (N, O, Ho, Wo), ``x``'s dtype and device, differentiable in ``x`` and ``w``.

    Arguments are assumed valid (the public functions check them).

    Example:
        >>> x = torch.arange(9.).reshape(1, 1, 3, 3)
        >>> correlate(x, torch.tensor([[[[0., 1.], [2., 3.]]]]))
        tensor([[[[19., 25.],
                  [37., 43.]]]])
    """
    problem = problem_for(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return _correlate_problem(x, w, problem, algo)
