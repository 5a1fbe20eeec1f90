"""Run the case table: every contender on every case, in this one process, back to back.

For each case the contenders are xcorr with ``algo="auto"``, xcorr with each algorithm that can run the case
forced (to score the planner: ``time(auto) / time(best forced)``), the copy floor and every peer. Each contender:

1. is skipped when the cost model (forced xcorr algorithms) or runs on a crop of the image (cases with sides of
   at least ``PROBE_MIN_SIDE``) say one call would take more than ``Policy.max_estimate_s`` or need more than
   half the memory the system has available (xcorr with ``algo="auto"`` is never skipped for time);
2. runs once to warm up, keeping the output and measuring its extra peak memory (:mod:`bench.memory`); a warm-up
   slower than ``Policy.max_estimate_s`` is reported as skipped, one slower than ``Policy.slow_s`` is the single
   sample (first-use costs are noise there: xcorr's kernels were compiled beforehand on a miniature of the case);
3. otherwise is timed with the case's other such contenders in interleaved rounds
   (:func:`bench.timing.repeat_in_rounds`), then runs once more to measure its extra peak memory.

Any exception from a contender is reported as ``failed`` with its message. Afterwards every xcorr output is
compared with every peer's output: the benchmark is also a correctness check.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from bench import memory, plans
from bench.cases import COPY, Bar, Case, Inputs, make_inputs
from bench.peers import PEERS, NotInstalledError, PeerFunction, Runner, xcorr_runner
from bench.timing import Policy, Timing, repeat_in_rounds, timed

XCORR = "xcorr"
# Forced algorithms' cost-model estimates cover the forward product; a backward pass adds two more products.
BACKWARD_COST_FACTOR = 3.0
# Issue 3's memory bar: no algorithm's extra peak memory exceeds 3x the output plus 64 MiB.
MEMORY_BAR_FACTOR = 3
MEMORY_BAR_SLACK = 64 << 20
# A contender may use at most this share of the memory the system has available.
MEMORY_SHARE = 0.5


def forced_name(algorithm: str) -> str:
    """The contender name of xcorr with ``algo=algorithm``."""
    return f"{XCORR}[{algorithm}]"


def is_xcorr(name: str) -> bool:
    """Whether a contender name is xcorr (auto or forced)."""
    return name == XCORR or name.startswith(XCORR + "[")


@dataclass(frozen=True)
class Outcome:
    """One contender on one case: ``status`` is ``ok``, ``skipped``, ``failed`` or ``not installed``."""

    status: str
    note: str = ""
    timing: Timing | None = None
    extra_peak_bytes: int | None = None


@dataclass
class CaseResult:
    """Everything measured on one case.

    ``differences[xcorr_variant][peer]`` is ``max |xcorr - peer| / max |peer|`` over every output array (the
    output, and for backward cases both gradients too).
    """

    case: Case
    plan: str
    plan_detail: str
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    differences: dict[str, dict[str, float]] = field(default_factory=dict)

    def median(self, name: str) -> float | None:
        """The median seconds of a contender that ran, else ``None``."""
        outcome = self.outcomes.get(name)
        return outcome.timing.median_s if outcome is not None and outcome.timing is not None else None

    def best_forced(self) -> tuple[str, float] | None:
        """The fastest forced xcorr algorithm and its median seconds."""
        times = {name: self.median(name) for name in self.outcomes if name.startswith(XCORR + "[")}
        ran = {name: t for name, t in times.items() if t is not None}
        return min(ran.items(), key=lambda item: item[1]) if ran else None

    def best_peer(self) -> tuple[str, float] | None:
        """The fastest peer (the copy floor excluded) and its median seconds."""
        times = {name: self.median(name) for name in self.outcomes if not is_xcorr(name) and name != COPY}
        ran = {name: t for name, t in times.items() if t is not None}
        return min(ran.items(), key=lambda item: item[1]) if ran else None

    def bar_met(self, bar: Bar) -> bool | None:
        """Whether xcorr met ``bar``; ``None`` when either side has no time."""
        ours, theirs = self.median(XCORR), self.median(bar.peer)
        return None if ours is None or theirs is None else ours <= bar.factor * theirs

    def memory_limit(self) -> int:
        """Issue 3's memory bar: extra peak at most 3x what the call returns plus 64 MiB."""
        return MEMORY_BAR_FACTOR * self.case.result_bytes + MEMORY_BAR_SLACK

    def worst_xcorr_memory(self) -> tuple[str, int] | None:
        """The xcorr contender (auto or forced) with the largest extra peak memory, and that memory in bytes."""
        peaks = {
            n: o.extra_peak_bytes for n, o in self.outcomes.items() if is_xcorr(n) and o.extra_peak_bytes is not None
        }
        return max(peaks.items(), key=lambda item: item[1]) if peaks else None


def relative_difference(ours: list[np.ndarray], theirs: list[np.ndarray]) -> float:
    """``max |ours - theirs| / max |theirs|`` over paired arrays; infinite when shapes differ."""
    if len(ours) != len(theirs) or any(a.shape != b.shape for a, b in zip(ours, theirs, strict=True)):
        return math.inf
    worst = 0.0
    for a, b in zip(ours, theirs, strict=True):
        scale = float(np.max(np.abs(b), initial=0.0)) or 1.0
        worst = max(worst, float(np.max(np.abs(np.subtract(a, b, dtype=np.float64)), initial=0.0)) / scale)
    return worst


@dataclass(frozen=True)
class _Probe:
    case: Case
    inputs: Inputs
    ratio: float


def _probe_veto(make: PeerFunction, probe: _Probe, threads: int, policy: Policy, timed_veto: bool) -> str | None:
    """Why the full-size run should be skipped, judged from a run on the crop (scaled by the ratio of areas).

    Too slow (only with ``timed_veto``) means two runs said so: the first may have compiled code for this size.
    """
    runner = make(probe.case, probe.inputs, threads)
    if runner is None:
        return None
    h, w = probe.case.image_shape[-2:]
    for _ in range(2):
        (_, seconds), extra = memory.extra_peak(lambda: timed(runner.call))
        if not timed_veto or seconds * probe.ratio <= policy.max_estimate_s:
            break
    else:
        return f"estimated {seconds * probe.ratio:.0f} s per call, {h}x{w} probe"
    limit = memory.available_bytes()
    if extra is not None and limit is not None and extra * probe.ratio > MEMORY_SHARE * limit:
        needed = extra * probe.ratio / 2**30
        return f"needs ~{needed:.0f} GiB of {limit / 2**30:.0f} GiB available, {h}x{w} probe"
    return None


@dataclass(frozen=True)
class _Warm:
    """A contender warmed up and fast enough to be timed in rounds, with its warm-up's output."""

    runner: Runner
    output: object


def _warm_up(
    make: PeerFunction, case: Case, inputs: Inputs, probe: _Probe | None, threads: int, policy: Policy, subject: bool
) -> tuple[Outcome, list[np.ndarray] | None] | _Warm | None:
    """One contender's first run on one case: its final outcome (skipped, failed, or a slow run's single sample), or
    ``_Warm`` when it is to be timed in rounds; ``None`` when it does not apply to the case. The ``subject`` (xcorr
    with ``algo="auto"``) is never skipped for time: if it is slow, that is the result."""
    try:
        runner = make(case, inputs, threads)
    except NotInstalledError as error:
        return Outcome("not installed", str(error)), None
    if runner is None:
        return None
    try:
        veto = None if probe is None else _probe_veto(make, probe, threads, policy, timed_veto=not subject)
        if veto is not None:
            return Outcome("skipped", veto), None
        (output, seconds), extra = memory.extra_peak(lambda: timed(runner.call))
        if seconds > policy.max_estimate_s and not subject:
            return Outcome("skipped", f"one run took {seconds:.0f} s"), runner.arrays(output)
        if seconds < policy.slow_s:
            return _Warm(runner, output)
        return Outcome("ok", timing=Timing.of([seconds]), extra_peak_bytes=extra), runner.arrays(output)
    except Exception as error:  # a contender that fails is a result to report, not a reason to stop
        return Outcome("failed", f"{type(error).__name__}: {error}"), None


def _time_in_rounds(warm: dict[str, _Warm], policy: Policy) -> dict[str, tuple[Outcome, list[np.ndarray] | None]]:
    """Time the warmed-up contenders together, then measure each one's extra peak memory. A contender that raises
    during the rounds is reported as failed; the others go on."""
    failures: dict[str, str] = {}

    def guarded(name: str, call: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            if name in failures:
                return None
            try:
                return call()
            except Exception as error:  # a contender that fails is a result to report, not a reason to stop
                failures[name] = f"{type(error).__name__}: {error}"
                return None

        return run

    timings = repeat_in_rounds({name: guarded(name, w.runner.call) for name, w in warm.items()}, policy)
    results: dict[str, tuple[Outcome, list[np.ndarray] | None]] = {}
    for name, w in warm.items():
        if name in failures:
            results[name] = Outcome("failed", failures[name]), None
            continue
        extra = memory.extra_peak(w.runner.call)[1]
        results[name] = Outcome("ok", timing=timings[name], extra_peak_bytes=extra), w.runner.arrays(w.output)
    return results


def _compile(contenders: list[tuple[str, PeerFunction, float | None]], case: Case, seed: int, threads: int) -> None:
    """Run the xcorr contenders once on a miniature of ``case``, so that compiling kernels on first use (numba
    compiles per dtype and memory layout, not per size) is never timed. Failures are left for the real run."""
    miniature = case.miniature()
    inputs = make_inputs(miniature, seed)
    for name, make, _ in contenders:
        if is_xcorr(name):
            with contextlib.suppress(Exception):
                runner = make(miniature, inputs, threads)
                if runner is not None:
                    runner.call()


def run_case(case: Case, policy: Policy, threads: int, seed: int, log: Callable[[str], None]) -> CaseResult:
    """Measure every contender on ``case`` and compare every xcorr output with every peer output."""
    inputs = make_inputs(case, seed)
    cropped = case.probe()
    probe = None if cropped is None else _Probe(cropped[0], make_inputs(cropped[0], seed), cropped[1])
    plan = plans.plan_for(case, inputs)
    result = CaseResult(case, plans.summary(plan), str(plan))
    contenders: list[tuple[str, PeerFunction, float | None]] = [(XCORR, xcorr_runner, None)]
    factor = BACKWARD_COST_FACTOR if case.backward else 1.0
    for algorithm, cost in plans.forceable(plan).items():
        contenders.append((forced_name(algorithm), functools.partial(xcorr_runner, algo=algorithm), cost * factor))
    contenders += [(name, peer, None) for name, peer in PEERS.items()]
    _compile(contenders, case, seed, threads)
    measured: dict[str, tuple[Outcome, list[np.ndarray] | None]] = {}
    warm: dict[str, _Warm] = {}
    for name, make, estimate in contenders:
        if estimate is not None and estimate > policy.max_estimate_s:
            measured[name] = Outcome("skipped", f"the cost model estimates {estimate:.0f} s per call"), None
            continue
        first = _warm_up(make, case, inputs, probe, threads, policy, subject=name == XCORR)
        if isinstance(first, _Warm):
            warm[name] = first
        elif first is not None:
            measured[name] = first
    measured.update(_time_in_rounds(warm, policy))
    outputs: dict[str, list[np.ndarray]] = {}
    for name, _, _ in contenders:
        if name not in measured:
            continue
        result.outcomes[name], output = measured[name]
        if output is not None:
            outputs[name] = output
        outcome = result.outcomes[name]
        shown = f"{outcome.timing.median_s * 1e3:.3g} ms" if outcome.timing else f"{outcome.status} {outcome.note}"
        log(f"  {name}: {shown[:120]}")
    for ours in filter(is_xcorr, outputs):
        result.differences[ours] = {
            peer: relative_difference(outputs[ours], theirs)
            for peer, theirs in outputs.items()
            if not is_xcorr(peer) and peer != COPY
        }
    return result


def run(cases: list[Case], policy: Policy, threads: int, seed: int, log: Callable[[str], None]) -> list[CaseResult]:
    """Every case in order (threads must already be set, see :func:`bench.machine.set_threads`).

    The objects that exist now (the libraries' own) are frozen out of the garbage collector for the run: they are
    never garbage, and walking them at every measurement would cost ~0.2 s each.
    """
    gc.collect()
    gc.freeze()
    try:
        results = []
        for index, case in enumerate(cases, 1):
            log(f"[{index}/{len(cases)}] {case.name}")
            results.append(run_case(case, policy, threads, seed, log))
        return results
    finally:
        gc.unfreeze()
