"""The differentiable engine: plan a correlation, run it, and route it so autograd, compile and torch.func all see it.

:func:`correlate` is what every public function calls. It takes one of two roads:

- **eager, on real tensors** (the common case): plan from the shapes, then run. Where no gradient is needed the
  planned algorithm runs directly; where the whole plan is torch's own kernel (``vendor``, forward and both
  gradients, or torch's kernel estimated as fast once xcorr's autograd overhead is counted) ``F.conv2d`` runs
  under torch's own autograd. Neither pays an operator dispatch.
- **everything else** (a gradient through a non-vendor plan, ``torch.compile``, ``torch.export``,
  ``torch.jit.trace``, ``torch.func`` transforms, fake tensors): the registered operator
  ``torch.ops.xcorr.correlate`` (:mod:`xcorr.op`), which plans when it runs on real data, has a shape-only fake
  implementation for tracing, and whose backward runs both gradient products (:mod:`xcorr.gradients`) through
  :func:`correlate_problem` again, so training uses the fast paths and higher derivatives work.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from xcorr import lowrank, tuning
from xcorr.algo import get_algorithm, vendor
from xcorr.planner import Plan, choose_exact, layer_worth_measuring, plan_problem, vendor_throughout
from xcorr.problem import Pair, Problem, Quad, is_channels_last


def problem_for(x: Tensor, w: Tensor, *, stride: Pair, padding: Quad, dilation: Pair, groups: int) -> Problem:
    """The :class:`Problem` for tensors ``x`` (N, C, H, W) and ``w`` (O, C // groups, kh, kw), with the weight's
    rank where it could change the plan (:func:`xcorr.lowrank.known_rank`)."""
    weight_shape = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
    input_shape = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    rank, layout = lowrank.known_rank(w), is_channels_last(x)
    return Problem(input_shape, weight_shape, stride, padding, dilation, groups, x.dtype, x.device.type, rank, layout)


def run_product(name: str, x: Tensor, w: Tensor, problem: Problem) -> Tensor:
    """Run one product without autograd; the result is channels last when ``x`` is.

    NaN and Inf must stay where a direct sum puts them, but a transform smears them over every output: on
    non-finite data an inexact algorithm hands over to the best exact one. Algorithms that read channels-last
    tensors as they are (``Algorithm.channels_last``) get ``x`` as it is; the others get a contiguous copy.
    """
    n, o, ho, wo = problem.output_shape
    if n * o * ho * wo == 0 or problem.input_shape[1] == 0:
        y = x.new_zeros((n, o, ho, wo))
        return y.contiguous(memory_format=torch.channels_last) if is_channels_last(x) else y
    # no input requires grad here, or the operator runs below autograd: no graph to keep out of
    algorithm = get_algorithm(name)
    if not algorithm.exact and not bool(torch.isfinite(x.sum() + w.sum())):
        algorithm = get_algorithm(choose_exact(problem).algorithm)
    return algorithm.run_in_layout(x, w, problem)


def product_runner(name: str, problem: Problem) -> Callable[[Tensor, Tensor], Tensor]:
    """:func:`run_product` of algorithm ``name`` for ``problem``, as a function of the two tensors: torch's own
    ``conv2d`` with the problem's geometry where that one call is all the product is (no per-call work left)."""
    n, o, ho, wo = problem.output_shape
    whole = vendor.whole_call(problem) if name == "vendor" and n * o * ho * wo and problem.input_shape[1] else None
    if whole is not None:
        return whole
    return lambda x, w: run_product(name, x, w, problem)


PLAIN_TYPES = (Tensor, torch.nn.Parameter)


def traced(*tensors: Tensor) -> bool:
    """Whether the call is traced or transformed (compile, export, jit.trace, torch.func, a tensor subclass such as
    fake or functional tensors), so it must go through the registered operator and read no data."""
    if traced_now():
        return True
    return not _plain(*tensors) or any(torch._C._functorch.is_functorch_wrapped_tensor(t) for t in tensors)


def traced_now() -> bool:
    """``torch.compile`` (Dynamo) or ``torch.jit.trace`` is recording this call."""
    return torch.compiler.is_compiling() or torch._C._get_tracing_state() is not None


def _plain(*tensors: Tensor) -> bool:
    """Plain tensors or parameters: no fake, functional or other subclass (functorch wrappers look plain)."""
    return all(type(t) in PLAIN_TYPES for t in tensors)


def _through_operator(
    x: Tensor, w: Tensor, stride: Pair, padding: Quad, dilation: Pair, groups: int, algo: str
) -> Tensor:
    """The registered operator when tracing (compile, export, jit.trace, fake tensors); otherwise (eager autograd,
    ``torch.func``) the same formula as :class:`xcorr.op.Correlation`, around the operator."""
    args = (x, w, list(stride), list(padding), list(dilation), groups, algo)
    if traced_now() or not _plain(x, w):
        result: Tensor = torch.ops.xcorr.correlate.default(*args)
        return result
    out: Tensor = op.apply_correlation(*args)
    return out


def correlate_problem(x: Tensor, w: Tensor, problem: Problem, algo: str, bias: Tensor | None = None) -> Tensor:
    """Differentiable correlation of ``x`` with ``w`` for a known ``problem``, plus ``bias`` (O,) per output channel
    (also what the backward calls, without a bias)."""
    if traced(x, w):
        y = _through_operator(x, w, problem.stride, problem.padding, problem.dilation, problem.groups, algo)
        return _add_bias(y, bias)
    return _correlate_eager(x, w, problem, algo, bias)


def _correlate_eager(x: Tensor, w: Tensor, problem: Problem, algo: str, bias: Tensor | None) -> Tensor:
    """:func:`correlate_problem` on plain tensors outside any trace (the caller has checked)."""
    requires_grad = torch.is_grad_enabled() and (x.requires_grad or w.requires_grad)
    plan = plan_problem(problem, requires_grad=requires_grad, algo=algo)
    if not requires_grad and not (bias is not None and bias.requires_grad):
        y = run_product(plan.forward.algorithm, x, w, problem)
        return y if bias is None else y.add_(bias.to(y.dtype).view(1, -1, 1, 1))
    if torch_runs_layer(problem, plan, algo):
        return _vendor_with_autograd(x, w, bias, problem)
    y = _through_operator(x, w, problem.stride, problem.padding, problem.dilation, problem.groups, algo)
    return _add_bias(y, bias)


def runs_torch_kernel(
    x: Tensor, w: Tensor, *, stride: Pair, padding: Quad, dilation: Pair, groups: int, algo: str
) -> bool:
    """Whether :func:`correlate` hands this whole call, forward and any gradients, to torch's own ``conv2d`` (the
    plan is ``vendor`` throughout, or torch's kernel is estimated as fast once xcorr's overhead is counted), so a
    caller may run torch's kernel itself. Never while tracing or under autocast (the operator's road)."""
    if traced(x, w) or torch.is_autocast_enabled(x.device.type):
        return False
    problem = problem_for(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    requires_grad = torch.is_grad_enabled() and (x.requires_grad or w.requires_grad)
    plan = plan_problem(problem, requires_grad=requires_grad, algo=algo)
    if requires_grad:
        return torch_runs_layer(problem, plan, algo)
    return plan.forward.algorithm == "vendor" and vendor.whole_call(problem) is not None


def torch_runs_layer(problem: Problem, plan: Plan, algo: str) -> bool:
    """Whether torch's own conv2d under torch's own autograd runs a differentiable call planned as ``plan``: the
    plan is torch's kernel throughout, or close to it (:func:`xcorr.planner.vendor_throughout`), or, where it mixes
    kernels and torch's estimates are close (:func:`xcorr.planner.layer_worth_measuring`), torch's forward and
    backward were measured faster than the plan's on the call's first run (random data, the call's layout),
    remembered in the tuning cache as ``tune`` remembers its winners."""
    if vendor_throughout(plan):
        return True
    if algo != "auto" or not layer_worth_measuring(plan):
        return False
    known = tuning.lookup(problem, "layer")
    if known is None:
        known = _faster_layer(problem)
        tuning.record(problem, known, "layer")
    return known == "torch"


def _faster_layer(problem: Problem) -> str:
    """``"torch"`` or ``"xcorr"``: whose forward + backward of ``problem`` is faster (the least disturbed of three
    runs each after a warm-up), on random data laid out as the call's."""
    layout = torch.channels_last if problem.channels_last else torch.contiguous_format

    def noise(shape: Quad, laid_out: torch.memory_format = layout) -> Tensor:
        return torch.randn(shape, dtype=problem.dtype, device=problem.device).contiguous(memory_format=laid_out)

    x, dy = noise(problem.input_shape).requires_grad_(), noise(problem.output_shape)
    w = noise(problem.weight_shape, torch.contiguous_format).requires_grad_()
    geometry = (problem.stride, problem.padding, problem.dilation, problem.groups)
    steps = {
        "torch": lambda: _vendor_with_autograd(x, w, None, problem).backward(dy),
        "xcorr": lambda: _through_operator(x, w, *geometry, "auto").backward(dy),
    }
    times = {}
    for name, step in steps.items():
        tuning.time_once(step, problem.device)
        times[name] = min(tuning.time_once(step, problem.device) for _ in range(3))
    return min(times, key=times.__getitem__)


def _add_bias(y: Tensor, bias: Tensor | None) -> Tensor:
    return y if bias is None else y + bias.to(y.dtype).view(1, -1, 1, 1)


def _vendor_with_autograd(x: Tensor, w: Tensor, bias: Tensor | None, problem: Problem) -> Tensor:
    """torch's own conv2d under torch's own autograd (the plan is ``vendor`` for every product)."""
    bias = None if bias is None else bias.to(x.dtype)
    top, bottom, left, right = problem.padding
    if top == bottom and left == right:
        return torch.nn.functional.conv2d(x, w, bias, problem.stride, (top, left), problem.dilation, problem.groups)
    padded = torch.nn.functional.pad(x, (left, right, top, bottom))
    return torch.nn.functional.conv2d(padded, w, bias, problem.stride, 0, problem.dilation, problem.groups)


def _autocast(t: Tensor) -> Tensor:
    """``t`` in the autocast dtype, as autocast casts a convolution's inputs (float64 is left alone, as torch does)."""
    dtype = torch.get_autocast_dtype(t.device.type)
    return t.to(dtype) if t.is_floating_point() and t.dtype not in (dtype, torch.float64) else t


def correlate(
    x: Tensor,
    w: Tensor,
    *,
    bias: Tensor | None = None,
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
        bias: optional (O,), added to each output channel (inside torch's kernel where that runs).
        stride, dilation: pairs of positive ints; padding: zeros (top, bottom, left, right).
        groups: channel groups, as ``torch.nn.functional.conv2d``.
        algo: ``"auto"`` (the planner decides) or a name from :func:`xcorr.algorithms`.

    Returns:
        y: (N, O, Ho, Wo), ``x``'s dtype and device (channels last when ``x`` is), differentiable in ``x`` and
        ``w``, traceable by ``torch.compile`` / ``torch.export`` and transformable by ``torch.func``. Under
        ``torch.autocast`` both inputs are cast to the autocast dtype first, as torch does for convolutions.

    Arguments are assumed valid (the public functions check them).

    Example:
        >>> x = torch.arange(9.).reshape(1, 1, 3, 3)
        >>> correlate(x, torch.tensor([[[[0., 1.], [2., 3.]]]]))
        tensor([[[[19., 25.],
                  [37., 43.]]]])
    """
    if torch.is_autocast_enabled(x.device.type):  # torch's policy for convolutions: the autocast dtype
        x, w = _autocast(x), _autocast(w)
    if traced(x, w):
        return _add_bias(_through_operator(x, w, stride, padding, dilation, groups, algo), bias)
    problem = problem_for(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return _correlate_eager(x, w, problem, algo, bias)


from xcorr import op  # noqa: E402  (op registers torch.ops.xcorr.correlate, which the roads above call)
