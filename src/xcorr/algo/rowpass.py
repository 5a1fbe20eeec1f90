"""The numba inner loops shared by the ``direct`` and ``separable`` algorithms: weighted sums of shifted rows.

Everything both algorithms compute reduces to one operation on 2-D arrays of image rows::

    out[c] = sum_t weight[t] * src[row[t], c * stride + offset[t]]      for every column c of out

a list of "taps", each naming a source row, a column offset and a weight. A 2-D correlation is one such sum
per output row over the kernel taps whose rows lie inside the image; a vertical 1-D pass is the same with
offset 0, a horizontal one with a single source row. :func:`correlate_taps` sums eight taps per sweep (then four,
two, one) in one SIMD loop over contiguous columns, the partial sum in registers. Every read must be inside
the source rows: the callers read from row buffers with zero margins, which is how the zero padding costs
nothing per pixel.

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
    n = np.uint64(out.shape[0])
    w0, w1, w2, w3, w4, w5, w6, w7 = w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]
    step = np.uint64(stride)
    for c in range(n):
        k = c * step
        v = (w0 * r0[b0 + k] + w1 * r1[b1 + k] + w2 * r2[b2 + k] + w3 * r3[b3 + k]) + (
            w4 * r4[b4 + k] + w5 * r5[b5 + k] + w6 * r6[b6 + k] + w7 * r7[b7 + k]
        )
        if store:
            out[c] = v
        else:
            out[c] += v


@numba.njit(cache=True, fastmath=FASTMATH, boundscheck=False)
def _sweep4(out, r0, r1, r2, r3, b0, b1, b2, b3, w0, w1, w2, w3, stride, store):  # type: ignore[no-untyped-def]
    """``out[c] (+)= w0 * r0[b0 + c * stride] + ... + w3 * r3[b3 + c * stride]``."""
    n = np.uint64(out.shape[0])
    step = np.uint64(stride)
    for c in range(n):
        k = c * step
        v = w0 * r0[b0 + k] + w1 * r1[b1 + k] + w2 * r2[b2 + k] + w3 * r3[b3 + k]
        if store:
            out[c] = v
        else:
            out[c] += v


@numba.njit(cache=True, fastmath=FASTMATH, boundscheck=False)
def _sweep2(out, r0, r1, b0, b1, w0, w1, stride, store):  # type: ignore[no-untyped-def]
    """``out[c] (+)= w0 * r0[b0 + c * stride] + w1 * r1[b1 + c * stride]``."""
    n = np.uint64(out.shape[0])
    step = np.uint64(stride)
    for c in range(n):
        k = c * step
        v = w0 * r0[b0 + k] + w1 * r1[b1 + k]
        if store:
            out[c] = v
        else:
            out[c] += v


@numba.njit(cache=True, fastmath=FASTMATH, boundscheck=False)
def _sweep1(out, r0, b0, w0, stride, store):  # type: ignore[no-untyped-def]
    """``out[c] (+)= w0 * r0[b0 + c * stride]``."""
    n = np.uint64(out.shape[0])
    step = np.uint64(stride)
    for c in range(n):
        v = w0 * r0[b0 + c * step]
        if store:
            out[c] = v
        else:
            out[c] += v
