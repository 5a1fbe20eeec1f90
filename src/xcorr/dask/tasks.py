"""What runs inside one Dask task: the in-memory xcorr call on one block (or one stored window) under the task's
torch thread count, and the write of one stored chunk. Pickled by reference: keep these importable top-level."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
import zarr

from xcorr import functional, matching
from xcorr.dask.windows import Window

_threads_lock = threading.Lock()
_threads_users = 0
_threads_before = 0


@contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    """Run the body with ``threads`` torch threads (numba follows: the core keeps the two equal).

    Torch's setting is per calling thread in OpenMP builds (each worker thread must set it) and process-wide in
    others, so every task sets it in its own thread, and the first task in records the process's value, which the
    last task out restores.
    """
    global _threads_users, _threads_before
    with _threads_lock:
        if _threads_users == 0:
            _threads_before = torch.get_num_threads()
        _threads_users += 1
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users -= 1
            if _threads_users == 0:
                torch.set_num_threads(_threads_before)


def filter_block(block: np.ndarray, kernel: np.ndarray, algo: str, threads: int) -> np.ndarray:
    with _torch_threads(threads):
        return np.asarray(functional.filter2d(block, kernel, mode="valid", algo=algo))


def conv_block(
    block: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    stride: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
    algo: str,
    threads: int,
) -> np.ndarray:
    with _torch_threads(threads):
        return np.asarray(functional.conv2d(block, weight, bias, stride, 0, dilation, groups, algo=algo))


def match_block(
    block: np.ndarray,
    used: np.ndarray | None = None,
    *,
    template: np.ndarray,
    mask: np.ndarray | None,
    method: str,
    threads: int,
) -> np.ndarray:
    with _torch_threads(threads):
        scores = matching.match_template(block, template, method=method, mask=mask, image_mask=used, mode="valid")
        return np.asarray(scores)


def filter_window_block(
    placeholder: np.ndarray,
    window: Window,
    target: zarr.Array[Any],
    kernel: np.ndarray,
    algo: str,
    threads: int,
    block_id: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Read the input window of ``target``'s chunk ``block_id``, filter it and write the chunk."""
    assert block_id is not None  # map_blocks always passes it to a function that declares it
    region = tuple(
        slice(i * chunk, min((i + 1) * chunk, size))
        for i, chunk, size in zip(block_id, target.chunks, target.shape, strict=True)
    )
    with _torch_threads(threads):
        target[region] = np.asarray(functional.filter2d(window.read(region), kernel, mode="valid", algo=algo))
    return np.ones((1,) * placeholder.ndim, bool)


def write_block(block: np.ndarray, target: zarr.Array[Any], block_info: dict[Any, Any] | None = None) -> np.ndarray:
    assert block_info is not None  # map_blocks always passes it to a function that declares it
    target[tuple(slice(start, stop) for start, stop in block_info[0]["array-location"])] = block
    return np.ones((1,) * block.ndim, bool)
