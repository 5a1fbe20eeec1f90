"""The numba inner loops shared by the ``direct`` and ``separable`` algorithms: weighted sums of shifted rows.

Everything both algorithms compute reduces to one operation on 2-D arrays of image rows::

    out[c] = sum_t weight[t] * src[row[t], c * stride + offset[t]]      for every column c of out

a list of "taps", each naming a source row, a column offset and a weight. A 2-D correlation is one such sum
per output row over the kernel taps whose rows lie inside the image; a vertical 1-D pass is the same with
offset 0, a horizontal one with a single source row. :func:`correlate_taps` sums eight taps per sweep (then four,
two, one) in one SIMD loop over contiguous columns, the partial sum in registers. Every read must be inside
the source rows: the callers read from row buffers with zero margins, which is how the zero padding costs
nothing per pixel.

One row at a time, each input row is loaded once per output row that reads it. The register-blocked sweeps at the
end compute four consecutive output rows together for the commonest small kernels (3x3, and columns of seven, five
or four rows), loading each input row once for all four.

8- and 16-bit samples are read as the float dtype of the sums (``as_float = out.dtype.type``): left to itself numba
computes ``uint16 * float32`` in float64, three times slower.

Floating-point: compiled with ``fastmath={"contract"}`` only, so ``w * x + s`` may become one fused
multiply-add but nothing is reassociated; the result is a direct sum with the usual error bound
``~ taps * eps * sum |w| |x|``.
"""

from __future__ import annotations

import numba
import numpy as np

FASTMATH = {"contract"}


@numba.njit(cache=True, fastmath=FASTMATH, boundscheck=False)
def correlate_taps(out, src, rows, offsets, weights, count, stride):  # type: ignore[no-untyped-def]
    """``out[c] = sum_t weights[t] * src[rows[t], c * stride + offsets[t]]`` over the first ``count`` taps.

    ``out`` (Wo,) and ``src`` (rows, W) C-contiguous of one float dtype, ``rows``/``offsets`` int64 with every
    read inside ``src`` (the callers keep zero margins around their rows for the padding), ``weights`` of
    ``src``'s dtype. Eight taps per sweep (then four, two, one): one SIMD loop over the columns each, the first
    storing, the others adding. No taps: zeros.
    """
    if count == 0:
        out[:] = 0
    t = 0
    while t < count:
        # Unsigned column indices: numba then skips its negative-index wraparound, which would block SIMD.
        b0 = np.uint64(offsets[t])
        if count - t >= 8:
            b1 = np.uint64(offsets[t + 1])
            b2 = np.uint64(offsets[t + 2])
            b3 = np.uint64(offsets[t + 3])
            b4 = np.uint64(offsets[t + 4])
            b5 = np.uint64(offsets[t + 5])
            b6 = np.uint64(offsets[t + 6])
            b7 = np.uint64(offsets[t + 7])
            r0, r1, r2, r3 = src[rows[t]], src[rows[t + 1]], src[rows[t + 2]], src[rows[t + 3]]
            r4, r5, r6, r7 = src[rows[t + 4]], src[rows[t + 5]], src[rows[t + 6]], src[rows[t + 7]]
            _sweep8(
                out, r0, r1, r2, r3, r4, r5, r6, r7, b0, b1, b2, b3, b4, b5, b6, b7, weights[t : t + 8], stride, t == 0
            )
            t += 8
        elif count - t >= 4:
            b1 = np.uint64(offsets[t + 1])
            b2 = np.uint64(offsets[t + 2])
            b3 = np.uint64(offsets[t + 3])
            r1, r2, r3 = src[rows[t + 1]], src[rows[t + 2]], src[rows[t + 3]]
            w1, w2, w3 = weights[t + 1], weights[t + 2], weights[t + 3]
            _sweep4(out, src[rows[t]], r1, r2, r3, b0, b1, b2, b3, weights[t], w1, w2, w3, stride, t == 0)
            t += 4
        elif count - t >= 2:
            b1 = np.uint64(offsets[t + 1])
            _sweep2(out, src[rows[t]], src[rows[t + 1]], b0, b1, weights[t], weights[t + 1], stride, t == 0)
            t += 2
        else:
            _sweep1(out, src[rows[t]], b0, weights[t], stride, t == 0)
            t += 1


@numba.njit(cache=True, fastmath=FASTMATH, boundscheck=False)
def _sweep8(out, r0, r1, r2, r3, r4, r5, r6, r7, b0, b1, b2, b3, b4, b5, b6, b7, w, stride, store):  # type: ignore[no-untyped-def]
    """``out[c] (+)= w[0] * r0[b0 + c * stride] + ... + w[7] * r7[b7 + c * stride]``."""
    as_float = out.dtype.type
    n = np.uint64(out.shape[0])
    w0, w1, w2, w3, w4, w5, w6, w7 = w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]
    step = np.uint64(stride)
    for c in range(n):
        k = c * step
        v = (
            w0 * as_float(r0[b0 + k])
            + w1 * as_float(r1[b1 + k])
            + w2 * as_float(r2[b2 + k])
            + w3 * as_float(r3[b3 + k])
        ) + (
            w4 * as_float(r4[b4 + k])
            + w5 * as_float(r5[b5 + k])
            + w6 * as_float(r6[b6 + k])
            + w7 * as_float(r7[b7 + k])
        )
        if store:
            out[c] = v
        else:
            out[c] += v


@numba.njit(cache=True, fastmath=FASTMATH, boundscheck=False)
def _sweep4(out, r0, r1, r2, r3, b0, b1, b2, b3, w0, w1, w2, w3, stride, store):  # type: ignore[no-untyped-def]
    """``out[c] (+)= w0 * r0[b0 + c * stride] + ... + w3 * r3[b3 + c * stride]``."""
    as_float = out.dtype.type
    n = np.uint64(out.shape[0])
    step = np.uint64(stride)
    for c in range(n):
        k = c * step
        v = (
            w0 * as_float(r0[b0 + k])
            + w1 * as_float(r1[b1 + k])
            + w2 * as_float(r2[b2 + k])
            + w3 * as_float(r3[b3 + k])
        )
        if store:
            out[c] = v
        else:
            out[c] += v


@numba.njit(cache=True, fastmath=FASTMATH, boundscheck=False)
def _sweep2(out, r0, r1, b0, b1, w0, w1, stride, store):  # type: ignore[no-untyped-def]
    """``out[c] (+)= w0 * r0[b0 + c * stride] + w1 * r1[b1 + c * stride]``."""
    as_float = out.dtype.type
    n = np.uint64(out.shape[0])
    step = np.uint64(stride)
    for c in range(n):
        k = c * step
        v = w0 * as_float(r0[b0 + k]) + w1 * as_float(r1[b1 + k])
        if store:
            out[c] = v
        else:
            out[c] += v


@numba.njit(cache=True, fastmath=FASTMATH, boundscheck=False)
def _sweep1(out, r0, b0, w0, stride, store):  # type: ignore[no-untyped-def]
    """``out[c] (+)= w0 * r0[b0 + c * stride]``."""
    as_float = out.dtype.type
    n = np.uint64(out.shape[0])
    step = np.uint64(stride)
    for c in range(n):
        v = w0 * as_float(r0[b0 + c * step])
        if store:
            out[c] = v
        else:
            out[c] += v


# Register-blocked sweeps of four consecutive output rows at once. Output row u reads source rows u .. u + kh - 1,
# so the four rows share all but three of their source rows: each row loaded serves up to four outputs instead of
# one, which is what limits the one-row sweeps above on small kernels. The sources and outputs are 2-D arrays of
# consecutive rows (one base pointer each keeps the vectoriser's overlap checks few), indexed with unsigned
# integers as above.


@numba.njit(cache=True, fastmath=FASTMATH, boundscheck=False)
def correlate_3x3_four_rows(out, lo, n, src, start, w, step):  # type: ignore[no-untyped-def]
    """``out[u, lo + c] = sum_ij w[i, j] * src[u + i, start + c + j * step]`` for ``u < 4``, ``c < n``: a whole 3x3
    kernel, its columns ``step`` apart (3 for the pixels of a channels-last RGB row).

    ``out`` (4, Wo) and ``src`` (6, W) C-contiguous of one float dtype, every read inside ``src``; ``w`` (3, 3).
    Eighteen loads and four stores per column for 36 multiply-adds, nothing accumulated in memory.
    """
    as_float = out.dtype.type
    first, begin, one, two = np.uint64(lo), np.uint64(start), np.uint64(step), np.uint64(2 * step)
    w0, w1, w2, w3, w4, w5, w6, w7, w8 = w[0, 0], w[0, 1], w[0, 2], w[1, 0], w[1, 1], w[1, 2], w[2, 0], w[2, 1], w[2, 2]
    for c in range(np.uint64(n)):
        k, m = begin + c, first + c
        a0, a1, a2 = as_float(src[0, k]), as_float(src[0, k + one]), as_float(src[0, k + two])
        b0, b1, b2 = as_float(src[1, k]), as_float(src[1, k + one]), as_float(src[1, k + two])
        d0, d1, d2 = as_float(src[2, k]), as_float(src[2, k + one]), as_float(src[2, k + two])
        e0, e1, e2 = as_float(src[3, k]), as_float(src[3, k + one]), as_float(src[3, k + two])
        f0, f1, f2 = as_float(src[4, k]), as_float(src[4, k + one]), as_float(src[4, k + two])
        g0, g1, g2 = as_float(src[5, k]), as_float(src[5, k + one]), as_float(src[5, k + two])
        out[0, m] = (w0 * a0 + w1 * a1 + w2 * a2) + (w3 * b0 + w4 * b1 + w5 * b2) + (w6 * d0 + w7 * d1 + w8 * d2)
        out[1, m] = (w0 * b0 + w1 * b1 + w2 * b2) + (w3 * d0 + w4 * d1 + w5 * d2) + (w6 * e0 + w7 * e1 + w8 * e2)
        out[2, m] = (w0 * d0 + w1 * d1 + w2 * d2) + (w3 * e0 + w4 * e1 + w5 * e2) + (w6 * f0 + w7 * f1 + w8 * f2)
        out[3, m] = (w0 * e0 + w1 * e1 + w2 * e2) + (w3 * f0 + w4 * f1 + w5 * f2) + (w6 * g0 + w7 * g1 + w8 * g2)


# The sizes of kernel column the four-row column sweeps below take. Each keeps its weights, the four outputs' partial
# sums and the input value just loaded in registers, loads each input row once for all four outputs, and reads and
# writes each output once per sweep. Two columns per sweep spill registers and ran 2-5x slower; columns of 9 and 11
# rows (14 rows read per sweep, as many L1 sets as a power-of-two row pitch allows) ran slower than one row at a time;
# fours make 9x9 (5 + 4) and 11x11 (7 + 4) kernels 1.1-1.3x faster than one row at a time.
COLUMN_SIZES = (7, 5, 4)


@numba.njit(cache=True, fastmath=FASTMATH, boundscheck=False)
def add_column_four_rows(out, lo, n, src, start, w):  # type: ignore[no-untyped-def]
    """``out[u, lo + c] += sum_i w[i] * src[u + i, start + c]`` for ``u < 4``, ``c < n``: one kernel column of
    ``len(w)`` rows, one of :data:`COLUMN_SIZES`.

    ``out`` (4, Wo) and ``src`` (len(w) + 3, W) C-contiguous (``src`` may hold 8- or 16-bit samples), every read
    inside ``src``. Per column, ``len(w) + 3`` loads and four read-modify-writes for ``4 * len(w)`` multiply-adds,
    each output's partial sum in a register.
    """
    if w.shape[0] == 4:
        _add_column4(out, lo, n, src, start, w)
    elif w.shape[0] == 5:
        _add_column5(out, lo, n, src, start, w)
    else:
        _add_column7(out, lo, n, src, start, w)


@numba.njit(cache=True, fastmath=FASTMATH, boundscheck=False)
def _add_column4(out, lo, n, src, start, w):  # type: ignore[no-untyped-def]
    """:func:`add_column_four_rows` for 4 kernel rows: ``src`` (7, W)."""
    as_float = out.dtype.type
    first, begin = np.uint64(lo), np.uint64(start)
    w0, w1, w2, w3 = w[0], w[1], w[2], w[3]
    for c in range(np.uint64(n)):
        k, m = begin + c, first + c
        a0, a1, a2, a3 = out[0, m], out[1, m], out[2, m], out[3, m]
        x = as_float(src[0, k])
        a0 = a0 + w0 * x
        x = as_float(src[1, k])
        a0, a1 = a0 + w1 * x, a1 + w0 * x
        x = as_float(src[2, k])
        a0, a1, a2 = a0 + w2 * x, a1 + w1 * x, a2 + w0 * x
        x = as_float(src[3, k])
        a0, a1, a2, a3 = a0 + w3 * x, a1 + w2 * x, a2 + w1 * x, a3 + w0 * x
        x = as_float(src[4, k])
        a1, a2, a3 = a1 + w3 * x, a2 + w2 * x, a3 + w1 * x
        x = as_float(src[5, k])
        a2, a3 = a2 + w3 * x, a3 + w2 * x
        x = as_float(src[6, k])
        a3 = a3 + w3 * x
        out[0, m], out[1, m], out[2, m], out[3, m] = a0, a1, a2, a3


@numba.njit(cache=True, fastmath=FASTMATH, boundscheck=False)
def _add_column5(out, lo, n, src, start, w):  # type: ignore[no-untyped-def]
    """:func:`add_column_four_rows` for 5 kernel rows: ``src`` (8, W)."""
    as_float = out.dtype.type
    first, begin = np.uint64(lo), np.uint64(start)
    w0, w1, w2, w3, w4 = w[0], w[1], w[2], w[3], w[4]
    for c in range(np.uint64(n)):
        k, m = begin + c, first + c
        a0, a1, a2, a3 = out[0, m], out[1, m], out[2, m], out[3, m]
        x = as_float(src[0, k])
        a0 = a0 + w0 * x
        x = as_float(src[1, k])
        a0, a1 = a0 + w1 * x, a1 + w0 * x
        x = as_float(src[2, k])
        a0, a1, a2 = a0 + w2 * x, a1 + w1 * x, a2 + w0 * x
        x = as_float(src[3, k])
        a0, a1, a2, a3 = a0 + w3 * x, a1 + w2 * x, a2 + w1 * x, a3 + w0 * x
        x = as_float(src[4, k])
        a0, a1, a2, a3 = a0 + w4 * x, a1 + w3 * x, a2 + w2 * x, a3 + w1 * x
        x = as_float(src[5, k])
        a1, a2, a3 = a1 + w4 * x, a2 + w3 * x, a3 + w2 * x
        x = as_float(src[6, k])
        a2, a3 = a2 + w4 * x, a3 + w3 * x
        x = as_float(src[7, k])
        a3 = a3 + w4 * x
        out[0, m], out[1, m], out[2, m], out[3, m] = a0, a1, a2, a3


@numba.njit(cache=True, fastmath=FASTMATH, boundscheck=False)
def _add_column7(out, lo, n, src, start, w):  # type: ignore[no-untyped-def]
    """:func:`add_column_four_rows` for 7 kernel rows: ``src`` (10, W)."""
    as_float = out.dtype.type
    first, begin = np.uint64(lo), np.uint64(start)
    w0, w1, w2, w3, w4, w5, w6 = w[0], w[1], w[2], w[3], w[4], w[5], w[6]
    for c in range(np.uint64(n)):
        k, m = begin + c, first + c
        a0, a1, a2, a3 = out[0, m], out[1, m], out[2, m], out[3, m]
        x = as_float(src[0, k])
        a0 = a0 + w0 * x
        x = as_float(src[1, k])
        a0, a1 = a0 + w1 * x, a1 + w0 * x
        x = as_float(src[2, k])
        a0, a1, a2 = a0 + w2 * x, a1 + w1 * x, a2 + w0 * x
        x = as_float(src[3, k])
        a0, a1, a2, a3 = a0 + w3 * x, a1 + w2 * x, a2 + w1 * x, a3 + w0 * x
        x = as_float(src[4, k])
        a0, a1, a2, a3 = a0 + w4 * x, a1 + w3 * x, a2 + w2 * x, a3 + w1 * x
        x = as_float(src[5, k])
        a0, a1, a2, a3 = a0 + w5 * x, a1 + w4 * x, a2 + w3 * x, a3 + w2 * x
        x = as_float(src[6, k])
        a0, a1, a2, a3 = a0 + w6 * x, a1 + w5 * x, a2 + w4 * x, a3 + w3 * x
        x = as_float(src[7, k])
        a1, a2, a3 = a1 + w6 * x, a2 + w5 * x, a3 + w4 * x
        x = as_float(src[8, k])
        a2, a3 = a2 + w6 * x, a3 + w5 * x
        x = as_float(src[9, k])
        a3 = a3 + w6 * x
        out[0, m], out[1, m], out[2, m], out[3, m] = a0, a1, a2, a3
