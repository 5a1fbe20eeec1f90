"""numba's disk cache of xcorr's kernels, kept in step with their sources.

numba checks a cached kernel against its own source file only (that file's timestamp and size). A kernel compiled
with another module's kernel inlined (the four-row blocks of :mod:`xcorr.algo.fourrows` and
:mod:`xcorr.algo.separable` inline :mod:`xcorr.algo.rowpass`'s sweeps) so keeps running the old copy when only
that other module changes, and an old sweep reading rows a new caller no longer has crashes the process. A release
install rewrites every file, so this bites editable installs after a partial update (a ``git pull`` touching only
``rowpass.py``). On import (:func:`keep_in_step`), the sources of every module that holds a cached kernel are
hashed together; where the hash differs from the one kept beside the cache, every kernel's cache index is emptied
(each kernel compiles again on first use, once) and the new hash is kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from numba.core.registry import CPUDispatcher

MARKER = "xcorr-kernel-sources.sha256"
"""The file, in each folder numba caches xcorr's kernels in, that holds the hash of the sources they came from."""

sources_digest = ""
"""The hash of the kernels' sources as :func:`keep_in_step` last found them (empty before): what the tuning cache
keys its measurements by, so a winner timed on other kernels is timed again."""


def keep_in_step(modules: Iterable[ModuleType]) -> bool:
    """Empty the cache of every cached numba kernel in ``modules`` unless it was compiled from these very sources.

    Pass the same modules every time (xcorr's import passes all of its own): the hash covers exactly these, and a
    different set reads as a change. Returns whether the caches were emptied (the first import after any change to
    a kernel module, or after installing). A cache folder that cannot be written is left as it is.

    Example:
        >>> keep_in_step([])  # no cached kernels: nothing to bring in step
        False
    """
    global sources_digest
    kernels = _cached_kernels(modules)
    digest = _sources_digest({inspect.getsourcefile(kernel.py_func) for kernel in kernels})
    sources_digest = digest
    markers = {Path(kernel._cache._cache_path) / MARKER for kernel in kernels}
    if all(_read(marker) == digest for marker in markers):
        return False
    for kernel in kernels:
        with contextlib.suppress(OSError):
            kernel._cache.flush()
    for marker in markers:
        with contextlib.suppress(OSError):
            marker.write_text(digest)
    return True


def _cached_kernels(modules: Iterable[ModuleType]) -> list[Any]:
    """The numba dispatchers compiled with ``cache=True`` defined in ``modules`` (imported names excluded)."""
    found = {}
    for module in modules:
        for value in vars(module).values():
            cache = getattr(value, "_cache", None)
            if (
                isinstance(value, CPUDispatcher)
                and hasattr(cache, "_cache_path")
                and value.__module__ == module.__name__
            ):
                found[id(value)] = value
    return list(found.values())


def _sources_digest(files: Iterable[str | None]) -> str:
    """One SHA-256 over the named files' contents, in name order."""
    digest = hashlib.sha256()
    for name in sorted(f for f in files if f is not None):
        digest.update(name.encode())
        digest.update(Path(name).read_bytes())
    return digest.hexdigest()


def _read(marker: Path) -> str | None:
    try:
        return marker.read_text()
    except OSError:
        return None
