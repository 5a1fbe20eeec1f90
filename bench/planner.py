"""How close ``algo="auto"`` comes to the fastest algorithm, off the benchmark's shapes: ``python -m bench.planner``.

Seeded random problems from every family the planner meets: single-channel images in every boundary (float32 and
float64, kernels 3-63), stacks of small images, dense, strided, depthwise and dilated layers, both gradient
products of random layers (the input gradient and the weight gradient, run as they run in a backward pass), and
forward calls shaped like weight gradients (kernels nearly the image's size, float32 and float64).
Each problem is timed with every algorithm forced and with ``"auto"``, in interleaved rounds in one process
(:func:`bench.timing.repeat_in_rounds`); ``auto`` is timed as a user calls it, so its first call (planning, and
measuring where the cost model cannot tell the candidates apart) is the warm-up, not a sample. The table gives
every problem's auto/best, then the distribution and the worst cases. Forced algorithms estimated over
:data:`SKIP_FACTOR` times the cheapest estimate, or whose single warm-up run takes over that factor times
auto's, are reported as skipped (they are not the fastest by that margin).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

import xcorr
from bench.machine import start_run
from bench.timing import Policy, repeat_in_rounds, timed
from xcorr import gradients, planner
from xcorr.errors import UnsupportedError
from xcorr.problem import Problem

SKIP_FACTOR = 30.0
BOUNDARIES = ("constant", "reflect", "symmetric", "edge", "wrap")


@dataclass(frozen=True)
class Case:
    """One problem: a name, its forward :class:`Problem` (for estimates and vetoes) and ``call(algo)``."""

    family: str
    name: str
    problem: Problem
    call: Callable[[str], Callable[[], object]]


def _log_uniform(rng: np.random.Generator, low: int, high: int) -> int:
    return round(np.exp(rng.uniform(np.log(low), np.log(high))))


def _odd(rng: np.random.Generator, low: int, high: int) -> int:
    return _log_uniform(rng, low, high) // 2 * 2 + 1


def image_case(rng: np.random.Generator, scale: int) -> Case:
    """A grey image filtered in "same" mode with a random boundary and dtype."""
    h, w = _log_uniform(rng, 256, 2048) // scale, _log_uniform(rng, 256, 2048) // scale
    k = min(_odd(rng, 3, 63), h, w) // 2 * 2 + 1 if min(h, w) > 3 else 3
    dtype = np.float64 if rng.random() < 0.25 else np.float32
    boundary = str(rng.choice(BOUNDARIES))
    image, kernel = rng.random((h, w)).astype(dtype), rng.standard_normal((k, k)).astype(dtype)
    problem = Problem((1, 1, h, w), (1, 1, k, k), padding=(k // 2,) * 4, dtype=_torch_dtype(dtype))
    name = f"{h}x{w} {np.dtype(dtype).name} k{k} {boundary}"
    return Case(
        "image", name, problem, lambda algo: lambda: xcorr.filter2d(image, kernel, boundary=boundary, algo=algo)
    )


def stack_case(rng: np.random.Generator, scale: int) -> Case:
    """A stack of small grey images, one kernel."""
    n, side, k = _log_uniform(rng, 4, 64), _log_uniform(rng, 32, 128), _odd(rng, 3, 9)
    images, kernel = rng.random((n, side, side)).astype(np.float32), rng.standard_normal((k, k)).astype(np.float32)
    problem = Problem((n, 1, side, side), (1, 1, k, k), padding=(k // 2,) * 4)
    return Case(
        "stack", f"{n}x{side}x{side} k{k}", problem, lambda algo: lambda: xcorr.filter2d(images, kernel, algo=algo)
    )


def wide_kernel_case(rng: np.random.Generator, scale: int) -> Case:
    """A weight-gradient-shaped forward call: an image correlated with "kernels" nearly its own size (the normal
    equations of a kernel fit, a cross-correlation of two images at small lags)."""
    side, lag = _log_uniform(rng, 128, 1024) // scale, _odd(rng, 3, 15)
    c, o = int(rng.choice((1, 1, 2))), _log_uniform(rng, 1, 8)
    dtype = torch.float64 if rng.random() < 0.5 else torch.float32
    x = torch.randn(1, c, side, side, dtype=dtype)
    w = torch.randn(o, c, side - lag + 1, side - lag + 1, dtype=dtype)
    problem = Problem(tuple(x.shape), tuple(w.shape), dtype=dtype)  # type: ignore[arg-type]
    name = f"1x{c}x{side}x{side} * {o}x{c}x{side - lag + 1}² {str(dtype).removeprefix('torch.')}"

    def call(algo: str) -> Callable[[], object]:
        return lambda: xcorr.conv2d(x, w, algo=algo)

    return Case("wide kernel", name, problem, call)


def _layer(rng: np.random.Generator, kind: str, scale: int) -> tuple[Problem, str]:
    n = _log_uniform(rng, 1, 8)
    if kind == "dense":
        c, o, side = _log_uniform(rng, 8, 128), _log_uniform(rng, 8, 128), _log_uniform(rng, 7, 56)
        k, stride, dilation, groups = int(rng.choice((1, 3, 3, 5))), int(rng.choice((1, 1, 2))), 1, 1
    elif kind == "depthwise":
        c = _log_uniform(rng, 16, 256)
        o, side, groups = c, _log_uniform(rng, 14, 112), c
        k, stride, dilation = int(rng.choice((3, 5, 7))), int(rng.choice((1, 1, 2))), 1
    else:  # dilated
        c, o, side = _log_uniform(rng, 4, 32), _log_uniform(rng, 4, 32), _log_uniform(rng, 32, 128)
        k, stride, dilation, groups = 3, 1, int(rng.integers(2, 5)), 1
    side = max(side // max(scale // 2, 1), k * dilation)
    pad = dilation * (k - 1) // 2
    problem = Problem(
        (n, c, side, side),
        (o, c // groups, k, k),
        stride=(stride,) * 2,
        padding=(pad,) * 4,
        dilation=(dilation,) * 2,
        groups=groups,
    )
    name = f"{kind} {n}x{c}x{side}x{side} -> {o} k{k} s{stride} d{dilation}"
    return problem, name


def layer_case(rng: np.random.Generator, kind: str, scale: int) -> Case:
    """A layer's forward pass through ``xcorr.conv2d``."""
    problem, name = _layer(rng, kind, scale)
    x, w = torch.randn(problem.input_shape), torch.randn(problem.weight_shape)

    def call(algo: str) -> Callable[[], object]:
        def run() -> object:
            with torch.no_grad():
                return xcorr.conv2d(
                    x,
                    w,
                    stride=problem.stride,
                    padding=problem.padding[::2],
                    dilation=problem.dilation,
                    groups=problem.groups,
                    algo=algo,
                )

        return run

    return Case(kind, name, problem, call)


def gradient_case(rng: np.random.Generator, product: str, scale: int) -> Case:
    """One gradient product of a random layer (or of the notebook's single-channel image layer), as the backward
    pass runs it: through :mod:`xcorr.gradients`, ``auto`` choosing as the planner does for that product."""
    kind = str(rng.choice(("dense", "depthwise", "dilated", "image")))
    if kind == "image":
        side, k = _log_uniform(rng, 256, 1024) // scale, _odd(rng, 3, 15)
        forward, name = Problem((1, 1, side, side), (1, 1, k, k), padding=(k // 2,) * 4), f"image {side}² k{k}"
    else:
        forward, name = _layer(rng, kind, scale)
    x, w = torch.randn(forward.input_shape), torch.randn(forward.weight_shape)
    dy = torch.randn(forward.output_shape)
    if product == "grad_input":
        rewritten, origin = gradients.input_gradient_problem(forward), ("grad_input", forward)
    else:
        rewritten, origin = gradients.weight_gradient_problem(forward), ("grad_weight", forward)

    def run_named(a: torch.Tensor, b: torch.Tensor, p: Problem, algo: str) -> torch.Tensor:
        return xcorr.algo.get_algorithm(algo).run(a, b, p)

    def call(algo: str) -> Callable[[], object]:
        def run() -> object:
            name = planner.choose(rewritten, origin=origin).algorithm if algo == "auto" else algo
            with torch.no_grad():
                if product == "grad_input":
                    return gradients.input_gradient(dy, w, forward, name, run_named)
                return gradients.weight_gradient(x, dy, forward, name, run_named)

        return run

    return Case(product, f"{name} {product}", rewritten, call)


def _torch_dtype(dtype: type) -> torch.dtype:
    return torch.float64 if dtype == np.float64 else torch.float32


def cases(rng: np.random.Generator, count: int, scale: int) -> list[Case]:
    """``count`` problems, the families in turn."""
    makers: list[Callable[[], Case]] = [
        lambda: image_case(rng, scale),
        lambda: image_case(rng, scale),
        lambda: stack_case(rng, scale),
        lambda: layer_case(rng, "dense", scale),
        lambda: layer_case(rng, "depthwise", scale),
        lambda: layer_case(rng, "dilated", scale),
        lambda: gradient_case(rng, "grad_input", scale),
        lambda: gradient_case(rng, "grad_weight", scale),
        lambda: gradient_case(rng, "grad_weight", scale),
        lambda: wide_kernel_case(rng, scale),
    ]
    return [makers[i % len(makers)]() for i in range(count)]


def measure(case: Case, policy: Policy) -> tuple[dict[str, float], list[str]]:
    """Median ms of auto and each forced algorithm worth timing, and the skipped ones."""
    vetoed = planner.vetoes(case.problem, "any")
    estimates = dict(planner.choose(case.problem, "vendor").estimates)  # every non-vetoed algorithm's estimate
    cheapest = min(estimates.values())
    auto = case.call("auto")
    auto()  # planning and any measuring: the warm-up
    _, auto_once = timed(auto)
    calls, skipped = {"auto": auto}, []
    for name in xcorr.algorithms():
        if name in vetoed:
            continue
        if estimates[name] > SKIP_FACTOR * cheapest:
            skipped.append(name)
            continue
        forced = case.call(name)
        try:
            _, warm_up = timed(forced)
        except UnsupportedError:  # what the shapes alone do not veto (separable and a full-rank kernel)
            continue
        if warm_up > SKIP_FACTOR * auto_once:
            _, warm_up = timed(forced)  # a first call may load a compiled kernel
            if warm_up > SKIP_FACTOR * auto_once:
                skipped.append(name)
                continue
        calls[name] = forced
    timings = repeat_in_rounds(calls, policy)
    return {name: t.median_s * 1e3 for name, t in timings.items()}, skipped


def main(argv: list[str] | None = None) -> None:
    rng, policy, scale = start_run("python -m bench.planner", __doc__.splitlines()[0], argv)
    count = 20 if scale > 1 else 60
    ratios: list[tuple[float, str]] = []
    print("| family | problem | auto ms | best (ms) | auto/best | skipped |")
    print("|---|---|---|---|---|---|")
    for case in cases(rng, count, scale):
        ms, skipped = measure(case, policy)
        forced = {name: t for name, t in ms.items() if name != "auto"}
        best = min(forced, key=forced.__getitem__)
        ratio = ms["auto"] / forced[best]
        ratios.append((ratio, f"{case.family} {case.name}"))
        print(
            f"| {case.family} | {case.name} | {ms['auto']:.3g} | {best} ({forced[best]:.3g}) | {ratio:.2f} | "
            f"{', '.join(skipped) or '-'} |",
            flush=True,
        )
    values = np.array([r for r, _ in ratios])
    print(
        f"\nauto/best over {len(values)} problems: median {np.median(values):.2f}, "
        f"90th percentile {np.percentile(values, 90):.2f}, worst {values.max():.2f}"
    )
    for ratio, name in sorted(ratios, reverse=True)[:5]:
        print(f"  {ratio:.2f}  {name}")


if __name__ == "__main__":
    main()
