"""Extra peak memory of one call: the rise of the process's resident-set high-water mark above its RSS before.

Linux only. Before the call, freed heap pages are handed back to the OS (``gc.collect`` and glibc's
``malloc_trim``), the current RSS is read, and the kernel's high-water mark (``VmHWM``) is reset by writing ``5`` to
``/proc/self/clear_refs``; after the call, ``VmHWM - RSS_before`` is every byte the call made resident at its
peak: its output, its temporaries, and those of every library it calls (torch, OpenCV, SciPy, FFT plans), whatever
allocator they use. ``tracemalloc`` would only see Python's allocator. Pages an allocator kept from earlier calls
and reuses are not counted, so the figure is a lower bound when a library caches buffers between calls.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_bytes(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise OSError(f"{field} not in {_STATUS}")


def _trim_heap() -> None:
    with contextlib.suppress(OSError, AttributeError):  # not glibc: freed pages stay resident (a lower bound)
        ctypes.CDLL("libc.so.6").malloc_trim(0)


@functools.cache
def available() -> bool:
    """Whether this system lets a process reset and read its own peak RSS."""
    try:
        _CLEAR_REFS.write_text("5")
        _status_bytes("VmHWM")
    except OSError:
        return False
    return True


def extra_peak(call: Callable[[], T]) -> tuple[T, int | None]:
    """``call()``'s result and the bytes it added to the process's peak RSS (``None`` where not measurable).

    Example:
        >>> import numpy as np
        >>> _, extra = extra_peak(lambda: np.ones(1 << 24))  # 128 MiB
        >>> extra is None or extra >= 100 << 20
        True
    """
    if not available():
        return call(), None
    gc.collect()
    _trim_heap()
    before = _status_bytes("VmRSS")
    _CLEAR_REFS.write_text("5")
    result = call()
    return result, max(_status_bytes("VmHWM") - before, 0)


def available_bytes() -> int | None:
    """Memory the system can still hand out without swapping (``MemAvailable``), or ``None`` where unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None
