"""Run a GIL-free numba kernel's tasks on torch's thread count, handed out by spinning threads without the GIL.

A kernel takes a *schedule* where a serial loop would take a task range, and runs the chunks of tasks it claims::

    while True:
        first, stop = claim(schedule)
        if first == stop:
            break
        for task in range(first, stop):
            ...

:func:`run_tasks` runs the kernel on the calling thread and, at the same time, on up to ``threads - 1`` threads of
a small shared pool; each claims chunks (a compare-and-swap on a counter tagged with the call's generation) until
none are left, so a core that is busy elsewhere takes fewer. Between calls the pool's threads spin for about
:data:`SPIN_CYCLES` in compiled code that holds no GIL, then sleep; a spinning thread joins a call only once the
caller is inside its kernel (its first chunk claimed), so it takes the GIL while the GIL is free, and the caller
waits for it in compiled code too. Putting a thread to sleep and waking it costs about 40 us each way on the
2-core virtual machines this project runs on, and a GIL handed between two busy threads as much: an empty call
through a ``ThreadPoolExecutor`` took 100 us, through this pool 29 us (its thread joins and leaves), and a call of
130 us of work on one thread took 125 us on two before, 69 us now.

The kernels are compiled serial (``nogil=True``) rather than with ``prange``: a ``parallel=True`` function
re-optimises every inlined row kernel (about three times the compile time), cannot take the kernels' tuples of
arguments, and numba's threading layers would run beside torch's OpenMP pool and under Dask's threads. Only one
caller at a time uses the pool (another thread meanwhile runs its kernel alone), and a forked child (a DataLoader
worker) starts a pool of its own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import numba
import numpy as np
import torch

from xcorr.algo import atomics

# Chunks per thread: enough to even out a busy core, few enough that claiming one is noise.
CHUNKS_PER_THREAD = 4
# Below this many seconds of estimated work a call runs on the calling thread alone.
MIN_PARALLEL_SECONDS = 2e-4
# How long an idle pool thread spins before it sleeps, in CPU cycles (about 6 ms at 2.6 GHz; GNU OpenMP's
# threads under torch spin for milliseconds too: a kernel run 3 ms after a torch op still shared a core): a
# layer or a filter called in a loop, with other work between the calls, finds it awake. Woken from sleep, a
# thread joins ~100 us late and runs colder: a 64-image 64x64 5x5 call 5 ms after the last took 550 us (490 on
# one thread) with a 0.8 ms budget, 400 us with this one. While it spins it offers its core to any other
# runnable thread every few microseconds.
SPIN_CYCLES = 2**24
# Every this many spins a spinning thread offers its core to any other runnable thread (a few microseconds).
_SPINS_PER_YIELD = 32

# The pool's control cells (int64): the chunk counter (generation << 32 | next chunk), the call's generation,
# its chunk count, how many pool threads may join it, and how many pool threads are inside a call now.
_COUNTER, _POSTED, _CHUNKS, _ALLOWED, _PRESENT = range(5)
_CHUNK_BITS = 32
_GENERATIONS = 2**30

Schedule = tuple[np.ndarray, np.ndarray, int]
"""(control cells, chunk bounds, generation): what a kernel passes to :func:`claim`."""


@numba.njit(cache=True, nogil=True)
def claim(schedule):  # type: ignore[no-untyped-def]
    """The next unclaimed chunk of tasks ``(first, stop)`` of ``schedule``, or ``(0, 0)`` when none is left."""
    control, bounds, generation = schedule
    chunks = bounds.size - 1
    while True:
        value = atomics.load(control, _COUNTER)
        chunk = value & ((1 << _CHUNK_BITS) - 1)
        if value >> _CHUNK_BITS != generation or chunk >= chunks:
            return 0, 0
        if atomics.compare_exchange(control, _COUNTER, value, value + 1):
            return bounds[chunk], bounds[chunk + 1]


def serial(tasks: int) -> Schedule:
    """A schedule of ``range(tasks)`` as one chunk, for a kernel called on one thread.

    Example:
        >>> claim(serial(5))
        (0, 5)
    """
    return np.zeros(_PRESENT + 1, np.int64), np.array([0, tasks], np.int64), 0


@numba.njit(cache=True)
def _post(control, generation, chunks, allowed):  # type: ignore[no-untyped-def]
    """Open a call: counters first, the generation last (atomic stores, seen in this order)."""
    atomics.store(control, _CHUNKS, chunks)
    atomics.store(control, _ALLOWED, allowed)
    atomics.store(control, _COUNTER, generation << _CHUNK_BITS)
    atomics.store(control, _POSTED, generation)


@numba.njit(cache=True, nogil=True)
def _await_call(control, index, seen, leaving, budget):  # type: ignore[no-untyped-def]
    """A pool thread between calls: leave the call it served (``leaving``), then spin up to ``budget`` cycles for
    a call other than ``seen`` that the caller is inside (a chunk claimed, one left) and that lets thread ``index``
    join; join it and return its generation, or -1 when the budget runs out."""
    if leaving:
        atomics.fetch_add(control, _PRESENT, -1)
    start, spins = atomics.cycles(), 0
    while atomics.cycles() - start < budget:
        generation = atomics.load(control, _POSTED)
        if generation != seen:
            value = atomics.load(control, _COUNTER)
            chunk = value & ((1 << _CHUNK_BITS) - 1)
            open_call = value >> _CHUNK_BITS == generation and 1 <= chunk < atomics.load(control, _CHUNKS)
            if open_call and index < atomics.load(control, _ALLOWED):
                atomics.fetch_add(control, _PRESENT, 1)
                return generation
        spins += 1
        if spins % _SPINS_PER_YIELD == 0:
            atomics.yield_cpu()
        else:
            atomics.pause()
    return -1


@numba.njit(cache=True, nogil=True)
def _await_helpers(control):  # type: ignore[no-untyped-def]
    """The caller, its chunks all claimed: spin until no pool thread is inside a call (one that joins later finds
    no chunk to claim)."""
    while atomics.load(control, _PRESENT) != 0:
        atomics.pause()


class _Pool:
    """Spinning threads that join :func:`run_tasks` calls, one caller at a time (:attr:`busy`)."""

    def __init__(self) -> None:
        self.control = np.zeros(_PRESENT + 1, np.int64)
        self.busy = threading.Lock()
        self.wake = threading.Condition()
        self.sleeping = 0
        self.generation = 0
        self.job: tuple[Callable[..., None], tuple[Any, ...], tuple[Any, ...], Schedule] | None = None
        self.failure: BaseException | None = None
        self.size = 0

    def grow(self, size: int) -> None:
        """Start threads until there are ``size``."""
        while self.size < size:
            threading.Thread(target=self._serve, args=(self.size,), name=f"xcorr-{self.size}", daemon=True).start()
            self.size += 1

    def run(
        self, kernel: Callable[..., None], before: tuple[Any, ...], after: tuple[Any, ...], tasks: int, helpers: int
    ) -> None:
        """``kernel(*before, schedule, *after)`` over ``range(tasks)`` here and on up to ``helpers`` pool threads."""
        chunks = min(tasks, (helpers + 1) * CHUNKS_PER_THREAD)
        bounds = np.array([tasks * k // chunks for k in range(chunks + 1)], np.int64)
        self.generation = self.generation % (_GENERATIONS - 1) + 1
        schedule = (self.control, bounds, self.generation)
        self.job = (kernel, before, after, schedule)
        _post(self.control, self.generation, chunks, helpers)
        if self.sleeping:
            with self.wake:
                self.wake.notify_all()
        try:
            kernel(*before, schedule, *after)
        finally:
            _await_helpers(self.control)
            self.job = None
            failure, self.failure = self.failure, None  # (dropped where this thread's own error is on its way)
        if failure is not None:
            raise failure

    def _serve(self, index: int) -> None:
        seen, leaving = 0, False
        while True:
            generation = _await_call(self.control, index, seen, leaving, SPIN_CYCLES)
            leaving = generation >= 0
            if not leaving:
                self._sleep(seen)
                continue
            seen = generation
            job = self.job
            if job is None or job[3][2] != generation:
                continue  # joined a call that ended meanwhile: leave at once
            kernel, before, after, schedule = job
            try:
                kernel(*before, schedule, *after)
            except BaseException as error:  # handed to the caller, which raises it
                self.failure = error

    def _sleep(self, seen: int) -> None:
        """Until a call other than ``seen`` (the last one served) is posted: not at all if one was posted while
        this thread waited for the GIL to get here."""
        with self.wake:
            self.sleeping += 1
            while self.control[_POSTED] == seen:
                self.wake.wait()
            self.sleeping -= 1


_pool: _Pool | None = None
_pool_lock = threading.Lock()


def _forget_pool() -> None:
    """In a forked child: the parent's pool object survived the fork but its threads did not; start afresh."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


def _shared_pool(helpers: int) -> _Pool:
    """The shared pool, grown to at least ``helpers`` threads."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = _Pool()
        _pool.grow(helpers)
        return _pool


def run_tasks(
    kernel: Callable[..., None], before: tuple[Any, ...], after: tuple[Any, ...], tasks: int, seconds: float
) -> None:
    """Call ``kernel(*before, schedule, *after)`` on up to ``torch.get_num_threads()`` threads to cover
    ``range(tasks)``: each call claims chunks of the schedule with :func:`claim` until none is left.

    ``kernel`` must be a ``numba.njit(nogil=True)`` function and the tasks must write disjoint outputs.
    ``seconds`` is the estimated serial run time: small calls stay on the calling thread.

    Example:
        >>> @numba.njit(nogil=True)
        ... def squares(out, schedule):
        ...     while True:
        ...         first, stop = claim(schedule)
        ...         if first == stop:
        ...             return
        ...         for t in range(first, stop):
        ...             out[t] = t * t
        >>> out = np.zeros(10, np.int64)
        >>> run_tasks(squares, (out,), (), 10, 1.0)
        >>> int(out[9])
        81
    """
    threads = min(torch.get_num_threads(), tasks)
    if threads > 1 and seconds >= MIN_PARALLEL_SECONDS:
        pool = _shared_pool(threads - 1)
        if pool.busy.acquire(blocking=False):  # else another thread's call has it: run alone
            try:
                pool.run(kernel, before, after, tasks, threads - 1)
                return
            finally:
                pool.busy.release()
    kernel(*before, serial(tasks), *after)
