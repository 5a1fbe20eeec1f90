"""Choosing an algorithm for each correlation: vetoes, then preferences, then measurements, then the cost model.

The planner looks at shapes, dtype and device only (a :class:`~xcorr.problem.Problem`), never at array values,
so its decisions are cached and can be made before any data exists. For one problem it decides, in order:

1. ``algo=`` names an algorithm: that one, or :class:`~xcorr.errors.UnsupportedError` saying why it cannot.
2. Vetoes: algorithms that cannot do the case (device, dtype, kernel rank) and, under
   ``use(precision="exact")``, those whose error is absolute rather than relative (FFT, low-rank).
3. ``with use("fft"):`` prefers the named algorithm wherever it is not vetoed.
4. A winner measured by :func:`tune` on this machine for this very problem.
5. The cheapest estimate of the cost model (constants in :mod:`xcorr.costs`).
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from xcorr import costs, tuning
from xcorr.algo import algorithm_names, get_algorithm
from xcorr.arguments import conv_padding, pair
from xcorr.errors import UnsupportedError
from xcorr.gradients import input_gradient_problem, weight_gradient_problem
from xcorr.problem import Problem

PRECISIONS = ("any", "exact")


@dataclass(frozen=True)
class _Preference:
    algorithm: str | None = None
    precision: str = "any"


_preference: contextvars.ContextVar[_Preference] = contextvars.ContextVar(
    "xcorr_preference",
    default=_Preference(),  # noqa: B039 (frozen, so safe to share)
)


@contextmanager
def use(algorithm: str | None = None, *, precision: str = "any") -> Iterator[None]:
    """Steer ``algo="auto"`` inside a ``with`` block (thread- and task-local; nests).

    Args:
        algorithm: a name from :func:`xcorr.algorithms`, preferred wherever it can do the case (the planner's
            choice is kept where it cannot, so code in the block never fails because of it). ``None`` keeps
            the enclosing preference.
        precision: ``"exact"`` forbids algorithms whose error is absolute (``eps * max|x| * sum|w|``: FFT and
            low-rank separable passes), for callers who need every output accurate relative to its own size.

    Example:
        >>> import torch, xcorr
        >>> with xcorr.use("reference"):
        ...     xcorr.corr2d(torch.ones(3, 3), torch.ones(2, 2))
        tensor([[4., 4.],
                [4., 4.]])
    """
    if algorithm is not None:
        get_algorithm(algorithm)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(map(repr, PRECISIONS))}, got {precision!r}")
    outer = _preference.get()
    token = _preference.set(_Preference(algorithm or outer.algorithm, precision))
    try:
        yield
    finally:
        _preference.reset(token)


@dataclass(frozen=True)
class Choice:
    """The algorithm picked for one correlation, why, and the estimated seconds of each candidate."""

    algorithm: str
    reason: str
    estimates: tuple[tuple[str, float], ...]

    def __str__(self) -> str:
        ranked = ", ".join(f"{name} {_seconds(cost)}" for name, cost in self.estimates)
        return (
            f"{self.algorithm} ({self.reason}; estimates: {ranked})" if ranked else f"{self.algorithm} ({self.reason})"
        )


@dataclass(frozen=True)
class Plan:
    """What runs for a correlation: the forward product and, when gradients are needed, both backward products.

    ``str(plan)`` explains the choices; ``plan.forward.algorithm`` is the forward algorithm's name.
    """

    problem: Problem
    forward: Choice
    grad_input: Choice | None = None
    grad_weight: Choice | None = None

    def __str__(self) -> str:
        lines = [f"plan for {self.problem.describe()}", f"  forward:     {self.forward}"]
        if self.grad_input is not None and self.grad_weight is not None:
            lines.append(f"  grad_input:  {self.grad_input}")
            lines.append(f"  grad_weight: {self.grad_weight}")
        return "\n".join(lines)


def _seconds(cost: float) -> str:
    return f"{cost * 1e3:.3g} ms" if cost < 1 else f"{cost:.3g} s"


def vetoes(problem: Problem, precision: str) -> dict[str, str]:
    """Algorithms that must not run ``problem``, each with the reason."""
    reasons = {}
    for name in algorithm_names():
        algorithm = get_algorithm(name)
        reason = algorithm.unsupported(problem)
        if reason is None and precision == "exact" and not algorithm.exact:
            reason = "its error is absolute, and use(precision='exact') is in force"
        if reason is not None:
            reasons[name] = reason
    return reasons


@functools.lru_cache(maxsize=4096)
def _choose(problem: Problem, algo: str, preference: _Preference, tuning_generation: int, threads: int) -> Choice:
    if problem.macs == 0:  # an empty batch, no channels, or no output: the engine returns zeros of the right shape
        return Choice("reference", "empty: nothing to compute, zeros returned", ())
    vetoed = vetoes(problem, preference.precision)
    estimates = tuple(
        sorted(((n, get_algorithm(n).cost(problem)) for n in algorithm_names() if n not in vetoed), key=lambda e: e[1])
    )
    if algo != "auto":
        get_algorithm(algo)
        if algo in vetoed:
            raise UnsupportedError(f"algo={algo!r} cannot compute {problem.describe()}: {vetoed[algo]}")
        return Choice(algo, "requested with algo=", estimates)
    if preference.algorithm is not None and preference.algorithm not in vetoed:
        return Choice(preference.algorithm, f"preferred by xcorr.use({preference.algorithm!r})", estimates)
    measured = tuning.lookup(problem)
    if measured in dict(estimates):  # a known algorithm that may run here (a stale entry may name neither)
        return Choice(measured, "measured fastest by xcorr.tune", estimates)
    return Choice(estimates[0][0], "cheapest by the cost model", estimates)


def choose(problem: Problem, algo: str = "auto") -> Choice:
    """The algorithm for ``problem``: ``algo`` itself, or the planner's pick for ``"auto"``."""
    return _choose(problem, algo, _preference.get(), tuning.generation(), torch.get_num_threads())


def choose_exact(problem: Problem) -> Choice:
    """The planner's pick among algorithms whose error is relative (for data with NaN or Inf in it)."""
    return _choose(problem, "auto", _Preference(precision="exact"), tuning.generation(), torch.get_num_threads())


def _choose_for_gradient(problem: Problem, algo: str) -> Choice:
    """A forced algorithm runs the gradient products too where it can; the planner picks where it cannot."""
    if algo != "auto" and get_algorithm(algo).unsupported(problem) is None:
        return choose(problem, algo)
    return choose(problem)


def gradient_choices(problem: Problem, algo: str = "auto") -> tuple[Choice, Choice]:
    """The algorithms for the input-gradient and weight-gradient products of the forward ``problem``.

    Shapes only: the weight's rank is never needed (so a backward pass can plan from the saved tensors' shapes).
    """
    return (
        _choose_for_gradient(input_gradient_problem(problem), algo),
        _choose_for_gradient(weight_gradient_problem(problem), algo),
    )


def plan_problem(problem: Problem, *, requires_grad: bool = False, algo: str = "auto") -> Plan:
    """The :class:`Plan` for ``problem``; with ``requires_grad`` the two backward products are planned too.

    Memoised on everything it reads (the problem, ``use(...)``, the tuning cache's generation, the thread count),
    so a layer called in a loop pays one dictionary lookup.
    """
    return _plan(problem, requires_grad, algo, _preference.get(), tuning.generation(), torch.get_num_threads())


@functools.lru_cache(maxsize=4096)
def _plan(
    problem: Problem, requires_grad: bool, algo: str, preference: _Preference, tuning_generation: int, threads: int
) -> Plan:
    forward = _choose(problem, algo, preference, tuning_generation, threads)
    if not requires_grad:
        return Plan(problem, forward)
    return Plan(problem, forward, *gradient_choices(problem, algo))


def vendor_throughout(plan: Plan) -> bool:
    """Whether running every product of ``plan`` with torch's own kernel under torch's own autograd is as fast.

    True when ``vendor`` is the pick for every product, and also when, under ``"auto"``, its estimates for them
    add up to no more than the plan's own plus :data:`xcorr.costs.AUTOGRAD_OVERHEAD` (xcorr's autograd node and
    operator dispatch, which torch's own path does not pay): tiny layers then cost what torch's do.
    """
    choices = [c for c in (plan.forward, plan.grad_input, plan.grad_weight) if c is not None]
    if all(c.algorithm == "vendor" for c in choices):
        return True
    if not choices[0].reason.startswith("cheapest"):  # forced, preferred or measured: keep it
        return False
    planned = sum(dict(c.estimates)[c.algorithm] for c in choices)
    vendor = [dict(c.estimates).get("vendor") for c in choices]
    return None not in vendor and sum(v for v in vendor if v is not None) <= planned + costs.AUTOGRAD_OVERHEAD


def describe(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    *,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | tuple[int, int, int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    weight_rank: int | None = None,
) -> Problem:
    """The :class:`Problem` for ``conv2d``-style arguments (shapes only); see :func:`plan`."""
    if len(input_shape) != 4 or len(weight_shape) != 4:
        raise ValueError(
            f"input_shape must be (N, C, H, W) and weight_shape (O, C // groups, kh, kw), "
            f"got {tuple(input_shape)} and {tuple(weight_shape)}"
        )
    stride_pair = pair(stride, "stride", minimum=1)
    dilation_pair = pair(dilation, "dilation", minimum=1)
    if isinstance(padding, (tuple, list)) and len(padding) == 4:
        quad = tuple(pair(p, "padding", minimum=0)[0] for p in padding)
        pads = (quad[0], quad[1], quad[2], quad[3])
    else:
        pads = conv_padding(padding, (weight_shape[2], weight_shape[3]), dilation_pair, stride_pair)
    return Problem(
        (input_shape[0], input_shape[1], input_shape[2], input_shape[3]),
        (weight_shape[0], weight_shape[1], weight_shape[2], weight_shape[3]),
        stride_pair,
        pads,
        dilation_pair,
        groups,
        dtype,
        torch.device(device).type,
        weight_rank,
    )


def plan(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    *,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | tuple[int, int, int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    requires_grad: bool = False,
    weight_rank: int | None = None,
    algo: str = "auto",
) -> Plan:
    """What ``xcorr.conv2d`` would run for these shapes, and why, without running anything.

    Args:
        input_shape: (N, C, H, W).
        weight_shape: (O, C // groups, kh, kw).
        stride, dilation, groups: as ``torch.nn.functional.conv2d``.
        padding: as ``conv2d`` (int, pair, ``"same"``, ``"valid"``) or zeros (top, bottom, left, right).
        dtype, device: of the tensors.
        requires_grad: also plan the input- and weight-gradient products.
        weight_rank: numerical rank of the kernel, if known (lets the separable algorithm compete).
        algo: ``"auto"`` or a name from :func:`xcorr.algorithms` to check it can run the case.

    Returns:
        A frozen :class:`Plan`; ``print(plan)`` shows each choice, its reason and every candidate's estimate.

    Example:
        >>> import xcorr
        >>> p = xcorr.plan((1, 1, 6, 8), (1, 1, 1, 2))
        >>> p.forward.algorithm in xcorr.algorithms()
        True
    """
    problem = describe(
        input_shape,
        weight_shape,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        dtype=dtype,
        device=device,
        weight_rank=weight_rank,
    )
    return plan_problem(problem, requires_grad=requires_grad, algo=algo)


# Candidates estimated slower than this many times the cheapest are not worth seconds of measuring.
TUNE_SHORTLIST_FACTOR = 20.0


def _measure_winner(problem: Problem, repeats: int) -> str:
    estimates = choose(problem).estimates
    shortlist = [name for name, cost in estimates if cost <= TUNE_SHORTLIST_FACTOR * estimates[0][1]]
    x = torch.randn(problem.input_shape, dtype=problem.dtype, device=problem.device)
    w = torch.randn(problem.weight_shape, dtype=problem.dtype, device=problem.device)
    with torch.no_grad():
        times = {
            name: tuning.measure(functools.partial(get_algorithm(name).run, x, w, problem), repeats, problem.device)
            for name in shortlist
        }
    return min(times, key=times.__getitem__)


def tune(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    *,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | tuple[int, int, int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    requires_grad: bool = False,
    weight_rank: int | None = None,
    repeats: int = 5,
) -> Plan:
    """Time the candidate algorithms on these shapes, remember the winners on disk, return the new plan.

    Arguments are those of :func:`plan`. Every product the plan contains (the forward and, with
    ``requires_grad``, both gradient products) is measured on random data: each algorithm the cost model puts
    within ``TUNE_SHORTLIST_FACTOR`` of the cheapest runs once to warm up, then ``repeats`` times, and the lowest
    median wins. Winners are kept in :func:`xcorr.tuning.cache_path` (keyed by shapes, dtype, device, thread
    count and versions), so later ``algo="auto"`` calls on the same shapes use them, in this process and the
    next. Vetoes and ``use(...)`` still apply on top.

    Example:
        >>> import xcorr
        >>> xcorr.tune((1, 1, 64, 64), (1, 1, 3, 3), padding=1, repeats=1).forward.reason
        'measured fastest by xcorr.tune'
    """
    problem = describe(
        input_shape,
        weight_shape,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        dtype=dtype,
        device=device,
        weight_rank=weight_rank,
    )
    products = [problem]
    if requires_grad:
        products += [input_gradient_problem(problem), weight_gradient_problem(problem)]
    for product in products:
        tuning.record(product, _measure_winner(product, repeats))
    return plan_problem(problem, requires_grad=requires_grad)
