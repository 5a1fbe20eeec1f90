"""Argument checks and conversions shared by the Dask front ends, raised while the graph is built (not in a task)."""

from __future__ import annotations

from collections.abc import Sequence

import dask.array as da
import numpy as np
import torch

from xcorr.algo import get_algorithm
from xcorr.arguments import ArrayLike


def check_dask_array(value: object, name: str, layout: str, ndims: Sequence[int]) -> None:
    if not isinstance(value, da.Array):
        raise TypeError(
            f"{name} must be a dask.array.Array, got {type(value).__name__}; wrap it with "
            f"dask.array.from_array({name}, chunks=...) or call xcorr.{'conv2d' if name == 'input' else 'filter2d'}"
        )
    if value.ndim not in ndims:
        raise ValueError(f"{name} must be {layout}, got {value.ndim}-D with shape {value.shape}")
    if any(np.isnan(size) for size in value.shape):
        raise ValueError(f"{name} has unknown chunk sizes; call {name}.compute_chunk_sizes() first")


def host_array(value: ArrayLike) -> np.ndarray:
    """A small argument (kernel, weight, bias) as a NumPy array to ship to every task."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return (value.float() if value.dtype == torch.bfloat16 else value).numpy()
    return np.asarray(value)


def check_algo(algo: str) -> None:
    if algo != "auto":
        get_algorithm(algo)


def check_threads(threads: object) -> None:
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads_per_task must be a positive int, got {threads!r}")
