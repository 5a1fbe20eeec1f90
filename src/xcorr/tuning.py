"""Measured winners, remembered on disk so ``xcorr.tune`` pays once per shape and machine.

The cache is one JSON file, ``$XCORR_CACHE_DIR/tuning.json`` (default ``~/.cache/xcorr/tuning.json``), keyed
by the problem (shapes, geometry, dtype, device), torch's thread count, the xcorr and torch versions and the
kernels' sources (:data:`xcorr.kernel_cache.sources_digest`), so a winner measured under other conditions, or
on other kernels, is never reused. A missing, corrupt or foreign file is treated as
empty and rewritten at the next measurement; it is never fatal, and neither is a cache that cannot be written
(read-only, full, a directory where the file should be): the winner is then kept in this process only, with a
warning.

Many processes may tune at once: each write reads the file, merges its own entries and renames a new file over
it while holding an exclusive lock (``tuning.json.lock``, ``fcntl.flock``), so no process's winners are lost.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

import torch

from xcorr import kernel_cache
from xcorr._version import __version__
from xcorr.problem import Problem

_FORMAT = 1


class _Loaded:
    """The cache file as last read or written, and a counter bumped whenever that changes."""

    where: ClassVar[tuple[str | None, str | None] | None] = None
    entries: ClassVar[dict[str, str]] = {}
    generation: ClassVar[int] = 0


def cache_path() -> Path:
    """Where measurements are kept: ``$XCORR_CACHE_DIR/tuning.json`` or ``~/.cache/xcorr/tuning.json``."""
    return _cache_path(*_where())


def _where() -> tuple[str | None, str | None]:
    """The environment the cache's path comes from: ``$XCORR_CACHE_DIR`` and ``$HOME``."""
    return os.environ.get("XCORR_CACHE_DIR"), os.environ.get("HOME")


@functools.lru_cache(maxsize=16)
def _cache_path(cache_dir: str | None, home: str | None) -> Path:
    """The path for these values of ``$XCORR_CACHE_DIR`` and ``$HOME`` (memoised: every planned call looks it up)."""
    root = Path(cache_dir) if cache_dir else (Path(home) if home else Path.home()) / ".cache" / "xcorr"
    return root / "tuning.json"


def _key(problem: Problem, kind: str) -> str:
    prefix = f"{kind}|" if kind else ""
    versions = f"xcorr={__version__}|kernels={kernel_cache.sources_digest[:16]}|torch={torch.__version__}"
    return f"{prefix}{problem!r}|threads={torch.get_num_threads()}|{versions}"


def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    entries = data.get("entries") if isinstance(data, dict) and data.get("format") == _FORMAT else None
    if not isinstance(entries, dict):
        return {}
    return {k: v for k, v in entries.items() if isinstance(k, str) and isinstance(v, str)}


def _entries() -> dict[str, str]:
    where = _where()  # compared as strings: every planned call comes here
    if _Loaded.where != where:
        _Loaded.where, _Loaded.entries = where, _read(_cache_path(*where))
        _Loaded.generation += 1
    return _Loaded.entries


def generation() -> int:
    """Changes whenever the cache's content may have changed (the planner keys its memo on it)."""
    _entries()
    return _Loaded.generation


def lookup(problem: Problem, kind: str = "") -> str | None:
    """The measured winner for ``problem`` under the current conditions, if any. ``kind`` names another question
    asked of the same problem (``"layer"``: torch's kernel or xcorr's plan for a whole differentiable call)."""
    return _entries().get(_key(problem, kind))


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (a ``.lock`` file beside it) for the block, across processes.

    The lock file is never removed (removing it would let two processes lock different files). Where ``fcntl``
    does not exist (Windows) the block runs unlocked.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on the platforms xcorr is tested on
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_merged(path: Path, new: dict[str, str]) -> dict[str, str]:
    """Merge ``new`` into the entries on disk under the lock, write them atomically, return the merged entries.

    Raises:
        OSError: the directory or file cannot be written (the caller decides whether that is fatal).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        entries = {**_read(path), **new}
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as handle:
            json.dump({"format": _FORMAT, "entries": entries}, handle, indent=1, sort_keys=True)
        try:
            os.replace(handle.name, path)
        except OSError:
            os.unlink(handle.name)
            raise
    return entries


def record(problem: Problem, algorithm: str, kind: str = "") -> None:
    """Remember ``algorithm`` as the winner for ``problem`` (and ``kind``, as :func:`lookup`), on disk when the
    cache can be written.

    Never raises for the cache's sake: an unwritable cache gives a :class:`RuntimeWarning` and the winner is
    kept for this process.
    """
    where = _where()
    path = _cache_path(*where)
    entries = {**_entries(), _key(problem, kind): algorithm}
    try:
        entries = _write_merged(path, {_key(problem, kind): algorithm})
    except OSError as exc:
        warnings.warn(
            f"xcorr could not save its tuning cache {path} ({exc.strerror or exc}); the measured winner is used in "
            "this process only. Set XCORR_CACHE_DIR to a writable directory to keep it.",
            RuntimeWarning,
            stacklevel=3,
        )
    _Loaded.where, _Loaded.entries = where, entries
    _Loaded.generation += 1


def time_once(run: Callable[[], object], device: str) -> float:
    """Wall time of one ``run()`` in seconds (CUDA work included: the device is synchronised)."""
    start = time.perf_counter()
    run()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start
