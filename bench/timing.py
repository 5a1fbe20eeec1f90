"""Wall-clock timing: warm-up excluded, then repeats until a time budget or a run count, reported as median and IQR."""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

T = TypeVar("T")


@dataclass(frozen=True)
class Policy:
    """How long to measure.

    Attributes:
        target_s: keep repeating until the repeats add up to this many seconds...
        min_runs: ...and at least this many runs were made...
        max_runs: ...but never more than this many.
        slow_s: a warm-up slower than this is the only run (its time is the sample; cold effects are noise there).
        max_estimate_s: a peer estimated (from a probe) to take longer than this per call is skipped.
    """

    target_s: float
    min_runs: int
    max_runs: int
    slow_s: float
    max_estimate_s: float


FULL_POLICY = Policy(target_s=1.0, min_runs=5, max_runs=100, slow_s=2.0, max_estimate_s=20.0)
QUICK_POLICY = Policy(target_s=0.05, min_runs=3, max_runs=10, slow_s=0.25, max_estimate_s=1.0)


@dataclass(frozen=True)
class Timing:
    """Seconds per call: median and interquartile range of ``runs`` samples."""

    median_s: float
    iqr_s: float
    runs: int

    @classmethod
    def of(cls, samples: list[float]) -> Timing:
        """Summarise samples (one sample gives an IQR of 0)."""
        q1, median, q3 = np.percentile(samples, [25, 50, 75])
        return cls(float(median), float(q3 - q1), len(samples))


def timed(call: Callable[[], T]) -> tuple[T, float]:
    """``call()``'s result and its wall time in seconds."""
    start = time.perf_counter()
    result = call()
    return result, time.perf_counter() - start


def repeat_in_rounds(calls: dict[str, Callable[[], object]], policy: Policy) -> dict[str, Timing]:
    """Time already warmed-up calls in rounds, one call of each per round (garbage collector paused, as ``timeit``
    does), until each has made the runs ``policy`` asks for; a call that has them drops out of later rounds.

    Interleaving puts a burst of load on a shared machine on every contender alike, not on whichever was being
    timed when it came, so their ratios hold better than their absolute times. Each round runs in a new (seeded)
    random order: in a fixed order each call would always inherit the cache and allocator state the same other
    call leaves behind (a large peer run just before xcorr cost it 0.3-0.5 ms per call).

    Example:
        >>> timings = repeat_in_rounds({"sum": lambda: sum(range(100)), "max": lambda: max(range(100))}, QUICK_POLICY)
        >>> all(timing.runs >= QUICK_POLICY.min_runs for timing in timings.values())
        True
    """
    samples: dict[str, list[float]] = {name: [] for name in calls}
    order = random.Random(0)  # a fresh order each round, the same sequence every run

    def wanted(name: str) -> bool:
        taken = samples[name]
        return len(taken) < policy.max_runs and (len(taken) < policy.min_runs or sum(taken) < policy.target_s)

    gc.collect()
    gc.disable()
    try:
        while active := [name for name in calls if wanted(name)]:
            order.shuffle(active)
            for name in active:
                samples[name].append(timed(calls[name])[1])
    finally:
        gc.enable()
    return {name: Timing.of(taken) for name, taken in samples.items()}


def median_ms(calls: dict[str, Callable[[], object]], policy: Policy) -> dict[str, float]:
    """Each call warmed up once (planning, compilation, first allocations), then :func:`repeat_in_rounds`: the
    median milliseconds per call, by name."""
    for call in calls.values():
        call()
    return {name: timing.median_s * 1e3 for name, timing in repeat_in_rounds(calls, policy).items()}
