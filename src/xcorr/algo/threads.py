"""Run a GIL-free numba kernel over a range of independent tasks on torch's thread count.

The numba kernels are compiled serial (``nogil=True``) and split across a small shared thread pool here rather
than with ``prange``: compiling a ``parallel=True`` function re-optimises every inlined row kernel and roughly
triples the first-use compile time, and numba's threading layers would run beside torch's OpenMP pool and
under Dask's threads. The calling thread works too, and the tasks are handed out in chunks to whichever thread is
free, so one busy core does not hold up the call. A forked child (a DataLoader worker) starts a pool of its own.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import torch

# Chunks per thread: enough to even out a busy core, few enough that the per-chunk dispatch (~10 us) is noise.
CHUNKS_PER_THREAD = 4
# Below this many seconds of estimated work a call runs on the calling thread alone.
MIN_PARALLEL_SECONDS = 2e-4

_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()


def _forget_pool() -> None:
    """In a forked child: the parent's pool object survived the fork but its threads did not; start afresh."""
    global _pool, _pool_size, _pool_lock
    _pool, _pool_size, _pool_lock = None, 0, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


def _workers(count: int) -> ThreadPoolExecutor:
    """The shared pool, grown to at least ``count`` threads."""
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < count:
            _pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix="xcorr")
            _pool_size = count
        return _pool


def run_tasks(kernel: Callable[[int, int], None], tasks: int, seconds: float) -> None:
    """Call ``kernel(first, stop)`` over chunks covering ``range(tasks)``, on up to ``torch.get_num_threads()`` threads.

    ``kernel`` must release the GIL (a ``numba.njit(nogil=True)`` function) and the tasks must write disjoint
    outputs. ``seconds`` is the estimated serial run time: small calls stay on the calling thread.

    Example:
        >>> out = [0] * 10
        >>> def kernel(first, stop):
        ...     for t in range(first, stop):
        ...         out[t] = t * t
        >>> run_tasks(kernel, 10, 1.0)
        >>> out[9]
        81
    """
    threads = min(torch.get_num_threads(), tasks)
    if threads <= 1 or seconds < MIN_PARALLEL_SECONDS:
        kernel(0, tasks)
        return
    chunks = min(tasks, threads * CHUNKS_PER_THREAD)
    bounds = [tasks * k // chunks for k in range(chunks + 1)]
    next_chunk = itertools.count()

    def work() -> None:
        for k in next_chunk:
            if k >= chunks:
                return
            kernel(bounds[k], bounds[k + 1])

    helpers: list[Future[None]] = [_workers(threads - 1).submit(work) for _ in range(threads - 1)]
    work()
    for helper in helpers:
        helper.result()
