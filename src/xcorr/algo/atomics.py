"""Atomic operations on int64 array elements, spin-wait hints and the cycle counter, for numba code.

numba has no atomics: a loop that reads a flag another thread sets may be compiled to read it once. These
intrinsics emit LLVM's atomic instructions instead (sequentially consistent, so the stores before a flag is
set are visible to the thread that sees it), which :mod:`xcorr.algo.threads` uses to hand chunks of work to
spinning threads without the GIL. Compiled code only: call them from ``numba.njit`` functions.

Example:
    >>> import numba, numpy as np
    >>> @numba.njit
    ... def bump(cells):
    ...     return fetch_add(cells, 0, 5), load(cells, 0)
    >>> bump(np.zeros(1, np.int64))
    (0, 5)
"""

from __future__ import annotations

import platform
from typing import Any

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_ORDER = "seq_cst"


def _intrinsic(define: Any) -> Any:
    """numba's ``intrinsic``, typed as what it is to callers: a function of the arguments after ``typingctx``."""
    return intrinsic(define)


_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")
_SCHED_YIELD = platform.system() in ("Linux", "Darwin")  # POSIX sched_yield, in the C library every process has


def _element_pointer(context, builder, signature, args):  # type: ignore[no-untyped-def]
    """The address of ``cells[index]`` (``cells`` a 1-D int64 array, the first two arguments)."""
    array_type = signature.args[0]
    cells = context.make_array(array_type)(context, builder, args[0])
    return cgutils.get_item_pointer(context, builder, array_type, cells, [args[1]])


def _int64_cells(cells) -> bool:  # type: ignore[no-untyped-def]
    return isinstance(cells, types.Array) and cells.dtype == types.int64 and cells.ndim == 1


@_intrinsic
def load(typingctx, cells, index):  # type: ignore[no-untyped-def]
    """``cells[index]``, read from memory every time (an atomic load)."""
    if not _int64_cells(cells):
        return None

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        return builder.load_atomic(_element_pointer(context, builder, signature, args), _ORDER, 8)

    return types.int64(cells, index), codegen


@_intrinsic
def store(typingctx, cells, index, value):  # type: ignore[no-untyped-def]
    """``cells[index] = value`` as an atomic store: every store before it is visible to whoever reads it."""
    if not _int64_cells(cells):
        return None

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        value = context.cast(builder, args[2], signature.args[2], types.int64)
        builder.store_atomic(value, _element_pointer(context, builder, signature, args), _ORDER, 8)
        return context.get_dummy_value()

    return types.void(cells, index, value), codegen


@_intrinsic
def fetch_add(typingctx, cells, index, value):  # type: ignore[no-untyped-def]
    """``cells[index] += value`` atomically; returns the value before."""
    if not _int64_cells(cells):
        return None

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        value = context.cast(builder, args[2], signature.args[2], types.int64)
        return builder.atomic_rmw("add", _element_pointer(context, builder, signature, args), value, _ORDER)

    return types.int64(cells, index, value), codegen


@_intrinsic
def compare_exchange(typingctx, cells, index, expected, value):  # type: ignore[no-untyped-def]
    """``cells[index] = value`` if it holds ``expected``, atomically; returns whether it did."""
    if not _int64_cells(cells):
        return None

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        pointer = _element_pointer(context, builder, signature, args)
        expected = context.cast(builder, args[2], signature.args[2], types.int64)
        value = context.cast(builder, args[3], signature.args[3], types.int64)
        pair = builder.cmpxchg(pointer, expected, value, _ORDER, _ORDER)
        return builder.extract_value(pair, 1)

    return types.boolean(cells, index, expected, value), codegen


@_intrinsic
def pause(typingctx):  # type: ignore[no-untyped-def]
    """The CPU's spin-wait hint (x86 ``pause``: the spinning core yields its pipeline to its sibling and saves
    power); nothing elsewhere (the spinning loops' atomic loads already read memory every time)."""

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        if _X86:
            hint = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause"
            )
            builder.call(hint, [])
        return context.get_dummy_value()

    return types.void(), codegen


@_intrinsic
def cycles(typingctx):  # type: ignore[no-untyped-def]
    """The CPU's cycle (time-stamp) counter: ``llvm.readcyclecounter``, about 1-4 per nanosecond."""

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        counter = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.IntType(64), []), "llvm.readcyclecounter"
        )
        return builder.call(counter, [])

    return types.int64(), codegen


@_intrinsic
def yield_cpu(typingctx):  # type: ignore[no-untyped-def]
    """Let another runnable thread have this core (POSIX ``sched_yield``; nothing where there is none): a spinning
    thread then costs no one a time slice."""

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        if _SCHED_YIELD:
            sched_yield = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.IntType(32), []), "sched_yield"
            )
            builder.call(sched_yield, [])
        return context.get_dummy_value()

    return types.void(), codegen
