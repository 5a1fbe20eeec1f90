"""Compiled passes of template matching that are not correlations: window moments and the scores' formulas.

:func:`box_moments` sums every window of an image and of its square in one pass (running column sums, float64:
exact for 8- and 16-bit images); :func:`combine` turns the window sums of :mod:`xcorr.matching` into scores, one
pass over the placements. Both split their rows over torch's threads (:func:`xcorr.algo.threads.run_tasks`).
They are the forward pass without autograd; under autograd the same formulas run as torch operations
(:func:`xcorr.matching._combined`), and the tests hold both to OpenCV's numbers.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from xcorr.algo.threads import claim, run_tasks

METHOD_CODES = {"sqdiff": 0, "sqdiff_normed": 1, "ccorr": 2, "ccorr_normed": 3, "ccoeff": 4, "ccoeff_normed": 5}
_SECONDS_PER_ELEMENT = 2e-9
FLAT = 1e-12
"""A variance at most this fraction of its sum of squares is rounding of a flat window or template: zero."""


def box_moments(x: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Sums of every (h, w) window of ``x`` (C, H, W) and of ``x**2``: two (C, H - h + 1, W - w + 1) float64 arrays.

    Running sums: exact for integer data whose window sums of squares stay below 2**53; for other data each sum
    errs by about ``eps * H * max |x|``.

    Example:
        >>> s, q = box_moments(np.arange(12.0).reshape(1, 3, 4), (2, 2))
        >>> s[0].tolist(), float(q[0, 0, 0])
        ([[10.0, 14.0, 18.0], [26.0, 30.0, 34.0]], 42.0)
    """
    kh, kw = size
    channels, height, width = x.shape
    sums = np.empty((channels, height - kh + 1, width - kw + 1))
    squares = np.empty_like(sums)
    bands = min(sums.shape[1], 4 * 8)
    run_tasks(_box_moments, (x, kh, kw, sums, squares), (bands,), channels * bands, x.size * _SECONDS_PER_ELEMENT * 4)
    return sums, squares


@numba.njit(cache=True, nogil=True)
def _box_moments(x, kh, kw, sums, squares, schedule, bands):  # type: ignore[no-untyped-def]
    """The tasks of :func:`box_moments` claimed from ``schedule``: a band of output rows of one channel each."""
    out_height, out_width = sums.shape[1], sums.shape[2]
    width = x.shape[2]
    column = np.empty(width)
    column_squares = np.empty(width)
    while True:
        first, stop = claim(schedule)
        if first == stop:
            return
        for task in range(first, stop):
            c, band = task // bands, task % bands
            lo, hi = band * out_height // bands, (band + 1) * out_height // bands
            if lo >= hi:
                continue
            column[:] = 0.0
            column_squares[:] = 0.0
            for i in range(lo, lo + kh):
                for j in range(width):
                    v = np.float64(x[c, i, j])
                    column[j] += v
                    column_squares[j] += v * v
            for r in range(lo, hi):
                if r > lo:  # slide the column sums down one row
                    for j in range(width):
                        add, drop = np.float64(x[c, r + kh - 1, j]), np.float64(x[c, r - 1, j])
                        column[j] += add - drop
                        column_squares[j] += add * add - drop * drop
                s, q = 0.0, 0.0
                for j in range(kw):
                    s += column[j]
                    q += column_squares[j]
                sums[c, r, 0], squares[c, r, 0] = s, q
                for j in range(1, out_width):
                    s += column[j + kw - 1] - column[j - 1]
                    q += column_squares[j + kw - 1] - column_squares[j - 1]
                    sums[c, r, j], squares[c, r, j] = s, q


def combine(
    method: str,
    cross: np.ndarray,
    image: tuple[np.ndarray, np.ndarray, np.ndarray],
    template: tuple[np.ndarray, np.ndarray, np.ndarray],
    weights: tuple[float, float],
    out: np.ndarray,
) -> None:
    """Write ``method``'s scores into ``out`` (n, Ho, Wo) by the formulas of :mod:`xcorr.matching`, where the
    template's sums are the same at every placement (no image mask).

    ``cross`` (n, Ho, Wo) is sum W² T I over channels; ``image`` the window sums W I, W² I, W² I² per channel,
    (C, Ho, Wo) each; ``template`` the sums W T, W² T, W² T², (n, C) each; ``weights`` sum W and sum W².

    Example:
        >>> c, image = np.full((1, 1, 1), 0.5), tuple(np.ones((3, 1, 1, 1)))
        >>> out = np.empty((1, 1, 1)); combine("sqdiff", c, image, tuple(np.ones((3, 1, 1))), (1.0, 1.0), out)
        >>> out.item()
        1.0
    """
    _n, out_height, _out_width = out.shape
    channels = image[0].shape[0]
    terms = (METHOD_CODES[method], cross, *image, *template, weights[0], weights[1], out)
    run_tasks(_combine, terms, (), out_height, out.size * (channels + 1) * _SECONDS_PER_ELEMENT)


@numba.njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")
def _combine(method, cross, s, sw, ss, ts, tw, tt, w, w2, out, schedule):  # type: ignore[no-untyped-def]
    """The output rows claimed from ``schedule``, of every template: the image's terms once per placement, then each
    template's."""
    n, out_width = out.shape[0], out.shape[2]
    channels = s.shape[0]
    centred = method >= 4  # ccoeff: less the window's weighted means, per channel
    t_mean = ts / w if w != 0 else np.zeros_like(ts)
    t_var = np.zeros(n)
    for t in range(n):
        squares = 0.0
        for c in range(channels):
            squares += tt[t, c]
            if centred:
                t_var[t] += tt[t, c] - 2 * t_mean[t, c] * tw[t, c] + t_mean[t, c] ** 2 * w2
            else:
                t_var[t] += tt[t, c]
        if t_var[t] <= FLAT * squares:  # a flat template: what is left is rounding
            t_var[t] = 0.0
    i_mean = np.zeros((channels, out_width))
    i_var = np.zeros(out_width)
    row = np.empty(out_width)  # one template's scores, float64 until written
    i_squares = np.zeros(out_width)
    while True:
        first, stop = claim(schedule)
        if first == stop:
            return
        for r in range(first, stop):
            i_var[:] = 0.0
            i_squares[:] = 0.0
            for c in range(channels):
                for j in range(out_width):
                    if centred:
                        mean = s[c, r, j] / w if w != 0 else 0.0
                        i_mean[c, j] = mean
                        i_var[j] += ss[c, r, j] - 2 * mean * sw[c, r, j] + mean * mean * w2
                        i_squares[j] += ss[c, r, j]
                    else:
                        i_var[j] += ss[c, r, j]
            if centred:
                for j in range(out_width):
                    if i_var[j] <= FLAT * i_squares[j]:  # a flat window
                        i_var[j] = 0.0
            for t in range(n):
                for j in range(out_width):
                    row[j] = cross[t, r, j]
                if centred:
                    for c in range(channels):
                        a, b = t_mean[t, c] * w2 - tw[t, c], t_mean[t, c]
                        for j in range(out_width):
                            row[j] += i_mean[c, j] * a - b * sw[c, r, j]
                if method == 0:
                    for j in range(out_width):
                        row[j] = max(t_var[t] - 2 * row[j] + i_var[j], 0.0)
                elif method == 1:
                    for j in range(out_width):
                        row[j] = min(max(normed(t_var[t] - 2 * row[j] + i_var[j], t_var[t] * i_var[j], 1.0), 0.0), 1.0)
                elif method == 3 or method == 5:
                    for j in range(out_width):
                        row[j] = normed(row[j], max(t_var[t], 0.0) * max(i_var[j], 0.0), 0.0)
                out[t, r] = row


@numba.njit(cache=True, nogil=True, inline="always", error_model="numpy")
def normed(numerator, squared_norms, flat):  # type: ignore[no-untyped-def]
    """OpenCV's rule for a normalised score: ``numerator / norm`` within the norm, +-1 within 1.125x of it (the
    rounding of a near-perfect match), else ``flat`` (a flat window or template: the norm is zero). Selects, not
    branches, so the loops calling it vectorise."""
    norm = math.sqrt(max(squared_norms, 0.0))
    size = abs(numerator)
    ratio = min(max(numerator / norm, -1.0), 1.0)
    near = math.copysign(1.0, numerator) if size < 1.125 * norm else flat
    return ratio if size < norm else near
