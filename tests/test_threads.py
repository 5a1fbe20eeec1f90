"""The shared thread pool: every task of every call run exactly once, whoever claims it, call after call, from
several calling threads at once, with the pool asleep or spinning; a kernel's error reaches its caller."""

import threading
import time

import numba
import numpy as np
import pytest
import torch

from xcorr.algo import threads
from xcorr.algo.threads import claim, run_tasks


@numba.njit(nogil=True)
def _count(counts, schedule, spin):  # type: ignore[no-untyped-def]
    """``counts[t] += 1`` for every task claimed, each after ``spin`` iterations of busy work."""
    while True:
        first, stop = claim(schedule)
        if first == stop:
            return
        for t in range(first, stop):
            total = 0.0
            for i in range(spin):
                total += np.sqrt(i + t)
            counts[t] += 1 + 0 * int(total)


@numba.njit(nogil=True)
def _fail(schedule):  # type: ignore[no-untyped-def]
    while True:
        first, stop = claim(schedule)
        if first == stop:
            return
        raise ValueError("kernel failed")


@pytest.fixture
def two_threads():  # type: ignore[no-untyped-def]
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize("tasks", [1, 2, 7, 64, 1000])
def test_every_task_runs_once_call_after_call(two_threads, tasks: int) -> None:  # type: ignore[no-untyped-def]
    counts = np.zeros(tasks, np.int64)
    for call in range(200):
        run_tasks(_count, (counts,), (50,), tasks, 1.0)
        assert (counts == call + 1).all(), f"call {call}: tasks run {sorted(set(counts.tolist()))} times"


def test_calls_after_the_pool_fell_asleep(two_threads) -> None:  # type: ignore[no-untyped-def]
    counts = np.zeros(256, np.int64)
    run_tasks(_count, (counts,), (2000,), 256, 1.0)
    for _ in range(3):
        time.sleep(0.05)  # far past the spin budget: the pool's threads sleep, and are woken by the call
        run_tasks(_count, (counts,), (2000,), 256, 1.0)
    assert (counts == 4).all()


def test_calls_from_several_threads_at_once(two_threads) -> None:  # type: ignore[no-untyped-def]
    outputs = [np.zeros(500, np.int64) for _ in range(3)]

    def caller(counts: np.ndarray) -> None:
        for _ in range(100):
            run_tasks(_count, (counts,), (200,), counts.size, 1.0)

    callers = [threading.Thread(target=caller, args=(counts,)) for counts in outputs]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join()
    assert all((counts == 100).all() for counts in outputs)


def test_one_thread_and_small_calls_run_on_the_caller_alone() -> None:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        counts = np.zeros(100, np.int64)
        run_tasks(_count, (counts,), (10,), 100, 1.0)
        run_tasks(_count, (counts,), (10,), 100, 0.0)
    finally:
        torch.set_num_threads(previous)
    assert (counts == 2).all()


def test_a_kernel_error_reaches_the_caller_and_the_pool_goes_on(two_threads) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="kernel failed"):
        run_tasks(_fail, (), (), 64, 1.0)
    counts = np.zeros(64, np.int64)
    run_tasks(_count, (counts,), (100,), 64, 1.0)
    assert (counts == 1).all()
    assert threads.serial(5)[1].tolist() == [0, 5]
