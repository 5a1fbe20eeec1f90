"""Per-call overhead: tiny layers, where the work is microseconds and every line of Python shows.

``python -m bench.overhead``: a (1, 8, 8, 8) 3x3 dense layer and a (1, 8, 16, 16) 3x3 depthwise layer, each as
``torch.nn.functional.conv2d``, ``xcorr.conv2d``, the registered operator ``torch.ops.xcorr.correlate`` and the
two ``nn.Conv2d`` layers (forward, and forward + backward), timed in interleaved rounds in one process
(:func:`bench.timing.repeat_in_rounds`). Each call is timed as a loop of 200, so timer resolution is no issue.
Prints the machine header, then the median per call and xcorr's difference to torch's.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import torch
import torch.nn.functional as F

import xcorr
from bench.machine import describe, set_threads
from bench.timing import Policy, repeat_in_rounds

LOOP = 200
POLICY = Policy(target_s=3.0, min_runs=30, max_runs=400, slow_s=10.0, max_estimate_s=10.0)


def _looped(call: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        for _ in range(LOOP):
            call()

    return run


def _backward(layer: torch.nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        layer(x).sum().backward()

    return step


def cases(groups: int, size: int) -> dict[str, Callable[[], object]]:
    """The contenders for one layer shape (8 channels in and out, 3x3, padding 1)."""
    torch.manual_seed(0)
    x = torch.randn(1, 8, size, size)
    theirs = torch.nn.Conv2d(8, 8, 3, padding=1, groups=groups)
    mine = xcorr.convert(torch.nn.Conv2d(8, 8, 3, padding=1, groups=groups))
    mine.load_state_dict(theirs.state_dict())
    w = theirs.weight.detach()
    correlate = torch.ops.xcorr.correlate.default
    return {
        "torch F.conv2d": lambda: F.conv2d(x, w, None, 1, 1, 1, groups),
        "xcorr.conv2d": lambda: xcorr.conv2d(x, w, None, 1, 1, 1, groups),
        "torch.ops.xcorr.correlate": lambda: correlate(x, w, [1, 1], [1, 1, 1, 1], [1, 1], groups, "auto"),
        "torch nn.Conv2d": lambda: theirs(x),
        "xcorr nn.Conv2d": lambda: mine(x),
        "torch nn.Conv2d fwd+bwd": _backward(theirs, x),
        "xcorr nn.Conv2d fwd+bwd": _backward(mine, x),
    }


PAIRS = (
    ("xcorr.conv2d", "torch F.conv2d"),
    ("torch.ops.xcorr.correlate", "torch F.conv2d"),
    ("xcorr nn.Conv2d", "torch nn.Conv2d"),
    ("xcorr nn.Conv2d fwd+bwd", "torch nn.Conv2d fwd+bwd"),
)


def main(threads: int = 2) -> None:
    header = describe(set_threads(threads))
    print(json.dumps(header, indent=1))
    print()
    print("| layer | contender | us per call | minus torch's (us) |")
    print("| --- | --- | --- | --- |")
    for name, groups, size in (("dense 1x8x8x8 3x3", 1, 8), ("depthwise 1x8x16x16 3x3", 8, 16)):
        calls = {label: _looped(call) for label, call in cases(groups, size).items()}
        for call in calls.values():
            call()  # warm-up: planning, first allocations
        timings = repeat_in_rounds(calls, POLICY)
        us = {label: timing.median_s / LOOP * 1e6 for label, timing in timings.items()}
        for label, value in us.items():
            reference = dict(PAIRS).get(label)
            delta = f"{value - us[reference]:+.1f}" if reference else ""
            print(f"| {name} | {label} | {value:.1f} | {delta} |")


if __name__ == "__main__":
    main()
