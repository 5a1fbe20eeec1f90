"""Choosing an algorithm for each correlation: vetoes, then preferences, then measurements, then the cost model.

The planner looks at shapes, dtype and device only (a :class:`~xcorr.problem.Problem`), never at array values,
so its decisions are cached and can be made before any data exists. For one problem it decides, in order:

1. ``algo=`` names an algorithm: that one, or :class:`~xcorr.errors.UnsupportedError` saying why it cannot.
2. Vetoes: algorithms that cannot do the case (device, dtype, kernel rank) and, under
   ``use(precision="exact")``, those whose error is absolute rather than relative (FFT, low-rank).
3. ``with use("fft"):`` prefers the named algorithm wherever it is not vetoed.
4. A winner measured on this machine for this very problem, by :func:`tune` or by an earlier call (below).
5. The cheapest estimate of the cost model (constants in :mod:`xcorr.costs`).

Measured once, remembered (like ``torch.backends.cudnn.benchmark``, but on disk and on by default): where the
cost model cannot tell its candidates apart (more than one within :data:`MEASURE_FACTOR` of the cheapest) and the
cheapest is estimated between :data:`MEASURE_MIN_SECONDS` and :data:`MEASURE_MAX_SECONDS`, the first call of a
new problem times those candidates on random data of its shapes (for a gradient product: the gradient as it would
run) and records the winner in the tuning cache. That first call then costs about one warm-up and three timed
runs of each close candidate; every later call, in this process or the next, pays a dictionary lookup. Not while
tracing (compile, export, fake tensors, ``torch.func``), and not with ``use(measure=False)`` or
``XCORR_MEASURE=0`` in the environment.
"""

from __future__ import annotations

import contextvars
import functools
import math
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import NamedTuple

import torch
from torch import Tensor

from xcorr import costs, tuning
from xcorr.algo import algorithm_names, get_algorithm, registry
from xcorr.algo.registry import Algorithm
from xcorr.arguments import conv_padding, pair
from xcorr.errors import UnsupportedError
from xcorr.gradients import input_gradient, input_gradient_problem, weight_gradient, weight_gradient_problem
from xcorr.problem import Problem

PRECISIONS = ("any", "exact")


# Candidates estimated within this factor of the cheapest are measured on a problem's first call (the cost
# model's estimates were off by up to 3x either way for torch's depthwise kernel on a grid of MobileNet/ConvNeXt
# shapes: 4 left such cases unmeasured)...
MEASURE_FACTOR = 8.0
# ...when the cheapest is estimated to take less than this (the measurement costs a few runs of each), and more
# than this (below it, per-call overheads decide, and the timings are noise)...
MEASURE_MAX_SECONDS = 0.5
MEASURE_MIN_SECONDS = 1e-4
# ...and a candidate whose warm-up already takes this many times the best so far is dropped after it.
DROP_FACTOR = 4.0


class _Preference(NamedTuple):  # a tuple: hashed and compared in C, as every planned call's memo key holds it
    algorithm: str | None = None
    precision: str = "any"
    measure: bool = True


_preference: contextvars.ContextVar[_Preference] = contextvars.ContextVar(
    "xcorr_preference",
    default=_Preference(measure=os.environ.get("XCORR_MEASURE", "1") != "0"),  # noqa: B039 (frozen: safe to share)
)


@contextmanager
def use(algorithm: str | None = None, *, precision: str = "any", measure: bool | None = None) -> Iterator[None]:
    """Steer ``algo="auto"`` inside a ``with`` block (thread- and task-local; nests).

    Args:
        algorithm: a name from :func:`xcorr.algorithms`, preferred wherever it can do the case (the planner's
            choice is kept where it cannot, so code in the block never fails because of it). ``None`` keeps
            the enclosing preference.
        precision: ``"exact"`` forbids algorithms whose error is absolute (``eps * max|x| * sum|w|``: FFT and
            low-rank separable passes), for callers who need every output accurate relative to its own size.
        measure: whether a new problem's first call may time the close candidates (see the module docstring);
            ``None`` keeps the enclosing setting (on by default, off with ``XCORR_MEASURE=0``).

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
    if measure is not None and not isinstance(measure, bool):
        raise TypeError(f"measure must be True, False or None (keep the enclosing setting), got {measure!r}")
    outer = _preference.get()
    token = _preference.set(
        _Preference(algorithm or outer.algorithm, precision, outer.measure if measure is None else measure)
    )
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


# Which product of a forward problem a choice is for: ("forward" | "grad_input" | "grad_weight", the forward).
Origin = tuple[str, Problem]


@functools.lru_cache(maxsize=4096)
def _choose(
    problem: Problem,
    algo: str,
    preference: _Preference,
    generation: tuple[int, int],
    threads: int,
    origin: Origin | None,
) -> Choice:
    if problem.macs == 0:  # an empty batch, no channels, or no output: the engine returns zeros of the right shape
        return Choice("reference", "empty: nothing to compute, zeros returned", ())
    vetoed = vetoes(problem, preference.precision)
    estimates = tuple(
        sorted(
            ((n, _cost(get_algorithm(n), problem)) for n in algorithm_names() if n not in vetoed), key=lambda e: e[1]
        )
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
        return Choice(measured, "measured fastest on this machine", estimates)
    close = [name for name, cost in estimates if cost <= MEASURE_FACTOR * estimates[0][1]]
    worth_measuring = MEASURE_MIN_SECONDS <= estimates[0][1] <= MEASURE_MAX_SECONDS and len(close) > 1
    if preference.measure and worth_measuring and _may_measure():
        winner = _measure_winner(close, origin or ("forward", problem), repeats=3)
        tuning.record(problem, winner)
        return Choice(winner, "measured fastest on this machine", estimates)
    return Choice(estimates[0][0], "cheapest by the cost model", estimates)


def _cost(algorithm: Algorithm, problem: Problem) -> float:
    """The algorithm's own estimate, plus the copies the engine makes for it: a channels-last input copied to
    contiguous and the result back (:meth:`Algorithm.run_in_layout`), 8/16-bit samples converted to a float copy
    where the algorithm cannot read them (:attr:`Algorithm.run_extended`)."""
    seconds = algorithm.cost(problem)
    if problem.channels_last and not algorithm.channels_last:
        n, o, ho, wo = problem.output_shape
        seconds += costs.COPY_PER_ELEMENT * (math.prod(problem.input_shape) + n * o * max(ho, 0) * max(wo, 0))
    if problem.input_dtype is not None and algorithm.run_extended is None:
        seconds += costs.COPY_PER_ELEMENT * math.prod(problem.input_shape)
    return seconds


def _generation() -> tuple[int, int]:
    """What the memoised plans must be recomputed after: a change to the tuning cache or to the registry."""
    return tuning.generation(), registry.version()


def _may_measure() -> bool:
    """Whether running real products now is harmless: not inside compile, jit tracing, fake or functorch tensors."""
    if torch.compiler.is_compiling() or torch._C._get_tracing_state() is not None:
        return False
    if torch._guards.detect_fake_mode() is not None:
        return False
    return torch._C._functorch.maybe_current_level() is None


def choose(problem: Problem, algo: str = "auto", origin: Origin | None = None) -> Choice:
    """The algorithm for ``problem``: ``algo`` itself, or the planner's pick for ``"auto"``. ``origin`` says which
    product of which forward problem ``problem`` is, so that a measurement times what would run."""
    return _choose(problem, algo, *state(), origin)


def choose_exact(problem: Problem) -> Choice:
    """The planner's pick among algorithms whose error is relative (for data with NaN or Inf in it)."""
    exact = _Preference(precision="exact", measure=False)
    return _choose(problem, "auto", exact, _generation(), torch.get_num_threads(), None)


def _choose_for_gradient(product: Problem, algo: str, origin: Origin) -> Choice:
    """A forced algorithm runs the gradient products too where it can; the planner picks where it cannot."""
    if algo != "auto" and get_algorithm(algo).unsupported(product) is None:
        return choose(product, algo, origin)
    return choose(product, "auto", origin)


def gradient_choices(problem: Problem, algo: str = "auto") -> tuple[Choice, Choice]:
    """The algorithms for the input-gradient and weight-gradient products of the forward ``problem``.

    Shapes only: the weight's rank is never needed (so a backward pass can plan from the saved tensors' shapes).
    """
    return (
        _choose_for_gradient(input_gradient_problem(problem), algo, ("grad_input", problem)),
        _choose_for_gradient(weight_gradient_problem(problem), algo, ("grad_weight", problem)),
    )


def state() -> tuple[_Preference, tuple[int, int], int]:
    """Everything besides the problem that a plan depends on: ``use(...)``, the tuning cache's and the registry's
    generation, the thread count (the planner's memo is keyed on it, as are callers that memoise a decision)."""
    return _preference.get(), _generation(), torch.get_num_threads()


def route_state() -> tuple[_Preference, int, int]:
    """What a remembered route (:mod:`xcorr.routes`) is decided again after: ``use(...)``, the registry and the
    thread count. Not the tuning cache (reading where it lies costs two environment lookups per call): a route
    stays what the call's first plan made it, measured or estimated, as ``cudnn.benchmark`` keeps its pick; only
    which kernel runs depends on it, never the result."""
    return _preference.get(), registry.version(), torch.get_num_threads()


def plan_problem(problem: Problem, *, requires_grad: bool = False, algo: str = "auto") -> Plan:
    """The :class:`Plan` for ``problem``; with ``requires_grad`` the two backward products are planned too.

    Memoised on everything it reads (the problem, ``use(...)``, the tuning cache and registry, the thread count),
    so a layer called in a loop pays one dictionary lookup.
    """
    return _plan(problem, requires_grad, algo, *state())


@functools.lru_cache(maxsize=4096)
def _plan(
    problem: Problem, requires_grad: bool, algo: str, preference: _Preference, generation: tuple[int, int], threads: int
) -> Plan:
    forward = _choose(problem, algo, preference, generation, threads, None)
    if not requires_grad:
        return Plan(problem, forward)
    return Plan(problem, forward, *gradient_choices(problem, algo))


def layer_worth_measuring(plan: Plan) -> bool:
    """Whether a differentiable call planned as ``plan`` should be timed, on its first call, against torch's own
    conv2d under torch's own autograd (whose backward computes both gradients in one call, which estimates per
    product cannot see): measuring is allowed, the plan is the planner's own, its estimated total is in the
    measured range and torch's estimates are within :data:`MEASURE_FACTOR` of it."""
    choices = _choices(plan)
    if len(choices) < 3 or not _preference.get().measure or not _may_measure():
        return False
    if not all(c.reason.startswith(("cheapest", "measured")) for c in choices):
        return False
    planned, vendor = _estimated_totals(choices)
    if not MEASURE_MIN_SECONDS <= planned <= MEASURE_MAX_SECONDS or vendor is None:
        return False
    return vendor <= MEASURE_FACTOR * planned


def vendor_throughout(plan: Plan) -> bool:
    """Whether running every product of ``plan`` with torch's own kernel under torch's own autograd is as fast.

    True when ``vendor`` is the pick for every product, and also when, under ``"auto"`` (estimated or measured
    picks; the measurements time each product's kernel alone), its estimates for them add up to no more than the
    plan's own plus :data:`xcorr.costs.AUTOGRAD_OVERHEAD` (xcorr's autograd node and operator dispatch, which
    torch's own path does not pay): tiny layers then cost what torch's do.
    """
    choices = _choices(plan)
    if all(c.algorithm == "vendor" for c in choices):
        return True
    if not choices[0].reason.startswith(("cheapest", "measured")):  # forced or preferred: keep it
        return False
    planned, vendor = _estimated_totals(choices)
    return vendor is not None and vendor <= planned + costs.AUTOGRAD_OVERHEAD


def _choices(plan: Plan) -> list[Choice]:
    """The plan's products: the forward, and the two gradients where it has them."""
    return [c for c in (plan.forward, plan.grad_input, plan.grad_weight) if c is not None]


def _estimated_totals(choices: Sequence[Choice]) -> tuple[float, float | None]:
    """The estimated seconds of the picked algorithms over ``choices``, and of torch's kernel over them (``None``
    where torch's kernel cannot run one of them)."""
    planned = sum(dict(c.estimates)[c.algorithm] for c in choices)
    vendor = [dict(c.estimates).get("vendor") for c in choices]
    return planned, None if None in vendor else sum(v for v in vendor if v is not None)


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
    """What ``xcorr.conv2d`` would run for these shapes, and why, from shapes only (no data).

    Where the cost model cannot tell the candidates apart, the first plan of a new problem times them on random
    data, exactly as the first ``conv2d`` call would (see the module docstring; ``use(measure=False)`` keeps it to
    the estimates).

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


def _product_call(origin: Origin) -> Callable[[str], Callable[[], Tensor]]:
    """For an algorithm's name, a call running the product ``origin`` names on random data as it would run: a
    gradient through :mod:`xcorr.gradients` (an algorithm's native gradient kernel included)."""
    kind, forward = origin

    def noise(shape: Sequence[int]) -> Tensor:
        return torch.randn(tuple(max(size, 0) for size in shape), dtype=forward.dtype, device=forward.device)

    if kind == "forward" and forward.input_dtype is not None:
        return _samples_call(forward, forward.input_dtype, noise(forward.weight_shape))
    x, w = noise(forward.input_shape), noise(forward.weight_shape)
    if kind == "forward":
        if forward.channels_last:  # timed as it runs: on this layout, with the copies it makes
            x = x.contiguous(memory_format=torch.channels_last)
        return lambda name: functools.partial(get_algorithm(name).run_in_layout, x, w, forward)
    dy = noise(forward.output_shape)

    def run(a: Tensor, b: Tensor, product: Problem, name: str) -> Tensor:
        return get_algorithm(name).run(a, b, product)

    if kind == "grad_input":
        return lambda name: functools.partial(input_gradient, dy, w, forward, name, run)
    return lambda name: functools.partial(weight_gradient, x, dy, forward, name, run)


def _samples_call(forward: Problem, stored: torch.dtype, w: Tensor) -> Callable[[str], Callable[[], Tensor]]:
    """:func:`_product_call` for a forward problem on 8/16-bit samples of dtype ``stored``: random samples, read
    as they are by an algorithm's ``run_extended``, converted to a float copy first for the others."""
    # any values in range: the kernels' time does not depend on them
    samples = torch.randint(0, 256, forward.input_shape, dtype=torch.int32).to(stored)
    in_float = replace(forward, input_dtype=None)

    def call(name: str) -> Callable[[], Tensor]:
        algorithm = get_algorithm(name)
        if algorithm.run_extended is not None:
            return functools.partial(algorithm.run_extended, samples, w, forward, "constant")
        return lambda: algorithm.run_in_layout(samples.to(forward.dtype), w, in_float)

    return call


def _measure_winner(candidates: Sequence[str], origin: Origin, repeats: int) -> str:
    """The fastest of ``candidates`` on the product ``origin`` names (the least disturbed of ``repeats`` runs, after
    one to warm up; twice when the first is slow: a compiled kernel loading). One whose warm-up takes over
    :data:`DROP_FACTOR` times the best so far is out without more runs, so a candidate the cost model
    misjudged costs one or two runs."""
    call = _product_call(origin)
    device = origin[1].device
    times: dict[str, float] = {}
    with torch.no_grad():
        for name in candidates:
            run = call(name)
            warm_up = tuning.time_once(run, device)
            if times and warm_up > DROP_FACTOR * min(times.values()):
                warm_up = tuning.time_once(run, device)
                if warm_up > DROP_FACTOR * min(times.values()):
                    continue
            times[name] = min(tuning.time_once(run, device) for _ in range(repeats))
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
    ``requires_grad``, both gradient products, as the backward pass runs them) is measured on random data: each
    algorithm the cost model puts within ``TUNE_SHORTLIST_FACTOR`` of the cheapest runs once to warm up, then
    ``repeats`` times, and the fastest run wins. Winners are kept in :func:`xcorr.tuning.cache_path` (keyed by
    shapes, dtype, device, thread count and versions), so later ``algo="auto"`` calls on the same shapes use
    them, in this process and the next. Vetoes and ``use(...)`` still apply on top.

    Example:
        >>> import xcorr
        >>> xcorr.tune((1, 1, 64, 64), (1, 1, 3, 3), padding=1, repeats=1).forward.reason
        'measured fastest on this machine'
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
    products: list[tuple[Problem, Origin]] = [(problem, ("forward", problem))]
    if requires_grad:
        products += [
            (input_gradient_problem(problem), ("grad_input", problem)),
            (weight_gradient_problem(problem), ("grad_weight", problem)),
        ]
    for product, origin in products:
        estimates = choose(product, origin=origin).estimates
        shortlist = [name for name, cost in estimates if cost <= TUNE_SHORTLIST_FACTOR * estimates[0][1]]
        tuning.record(product, _measure_winner(shortlist, origin, repeats))
    return plan_problem(problem, requires_grad=requires_grad)
