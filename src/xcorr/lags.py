"""The Gram matrix of an image's windows, from one pass over the image per lag (numba, float64).

Fitting an h x w kernel by least squares needs ``G[t, s] = sum(X_t * X_s)`` for every pair of taps, where
``X_t`` is the (Ho, Wo) window of the image that tap ``t = (i, j)`` sees. Computed as correlations, that is
``h * w`` image-sized products per tap: ``(h w)^2 Ho Wo`` multiply-adds. But two taps at the same lag
``(a, c) = (k - i, l - j)`` sum the same lagged product image ``P[u, v] = x[u, v] x[u + a, v + c]`` over windows
that differ only by thin border strips. So per lag, each image row's product is summed once over the columns
every window shares (one SIMD dot product), the few border columns are added per window, and prefix sums over
the rows give every window's total: about ``2 h w`` passes over the image in all, instead of ``(h w)^2``.

Accuracy: every product and sum is float64; a window's total is a difference of two row prefix sums, so its
error is about ``eps * H * max_row_sum`` (absolute), far below float32 data's own rounding.
"""

from __future__ import annotations

import numba
import numpy as np

from xcorr.algo.threads import claim, run_tasks

# Column lags computed in one walk over the image (their rows shared in cache); groups are the threads' tasks.
_LAGS_PER_GROUP = 8
# Seconds per multiply-add of the lag passes, for run_tasks' "is it worth a second thread" test only.
_SECONDS_PER_MAC = 1e-10


@numba.njit(cache=True, fastmath={"reassoc", "contract"}, boundscheck=False)
def _dot(a, b):  # type: ignore[no-untyped-def]
    total = 0.0
    for v in range(np.uint64(a.shape[0])):
        total += a[v] * b[v]
    return total


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _lag_entries(x3, h, w, groups, schedule, gram):  # type: ignore[no-untyped-def]
    """Fill ``gram`` (h*w, h*w), both triangles, for the lag groups claimed from ``schedule``: rows of ``groups``,
    (a, c_first, c_stop), the lags (a, c) for c in [c_first, c_stop), a >= 0. A group walks the image once: each
    pair of rows (u, u + a) is loaded once for all its column lags."""
    images, height, width = x3.shape
    out_h, out_w = height - h + 1, width - w + 1
    row = np.empty(w)
    while True:
        first, stop = claim(schedule)
        if first == stop:
            return
        for t in range(first, stop):
            a, c_first, c_stop = groups[t, 0], groups[t, 1], groups[t, 2]
            prefix = np.zeros((c_stop - c_first, height - a + 1, w))
            totals = np.zeros((c_stop - c_first, h - a, w))
            for b in range(images):
                for u in range(height - a):
                    top, below = x3[b, u], x3[b, u + a]
                    for c in range(c_first, c_stop):
                        _row_sums(top, below, c, w, out_w, row)
                        for j in range(w):  # (a loop: an array expression would allocate per row)
                            prefix[c - c_first, u + 1, j] = prefix[c - c_first, u, j] + row[j]
                for c in range(c_first, c_stop):
                    for i in range(h - a):
                        for j in range(w):
                            totals[c - c_first, i, j] += prefix[c - c_first, i + out_h, j] - prefix[c - c_first, i, j]
            for c in range(c_first, c_stop):
                for i in range(h - a):
                    for j in range(max(0, -c), min(w, w - c)):
                        s, r = i * w + j, (i + a) * w + j + c
                        gram[s, r] = gram[r, s] = totals[c - c_first, i, j]


@numba.njit(cache=True, boundscheck=False)
def _row_sums(top, below, c, w, out_w, row):  # type: ignore[no-untyped-def]
    """``row[j] = sum(top[j + v] * below[j + v + c] for v < out_w)`` for the taps j with j, j + c in [0, w):
    the columns all of them share in one dot product, the border columns added window by window."""
    j_first, j_stop = max(0, -c), min(w, w - c)
    shared_first, shared_stop = j_stop - 1, j_first + out_w  # columns every window of this lag covers
    if shared_stop < shared_first:  # windows narrower than the lag range: each summed in full
        for j in range(j_first, j_stop):
            row[j] = _dot(top[j : j + out_w], below[j + c : j + c + out_w])
        return
    shared = _dot(top[shared_first:shared_stop], below[shared_first + c : shared_stop + c])
    left = 0.0  # sum over v in [j, shared_first), grown leftwards
    for j in range(j_stop - 1, j_first - 1, -1):
        if j < shared_first:
            left += top[j] * below[j + c]
        row[j] = shared + left
    right = 0.0  # sum over v in [shared_stop, j + out_w), grown rightwards
    for j in range(j_first, j_stop):
        if j + out_w - 1 >= shared_stop:
            right += top[j + out_w - 1] * below[j + out_w - 1 + c]
        row[j] += right


@numba.njit(cache=True, boundscheck=False)
def _window_sums(x3, h, w):  # type: ignore[no-untyped-def]
    images, height, width = x3.shape
    out_h, out_w = height - h + 1, width - w + 1
    ones = np.ones(width + w)
    row, sums = np.empty(w), np.zeros((h, w))
    for b in range(images):
        prefix = np.zeros((height + 1, w))
        for u in range(height):
            _row_sums(x3[b, u], ones, 0, w, out_w, row)
            for j in range(w):
                prefix[u + 1, j] = prefix[u, j] + row[j]
        for i in range(h):
            for j in range(w):
                sums[i, j] += prefix[i + out_h, j] - prefix[i, j]
    return sums


def window_sums(x: np.ndarray, kernel_size: tuple[int, int]) -> np.ndarray:
    """``S[i, j] = sum over images of sum(X_(i, j))``: the sums of the "valid" windows of an h x w kernel.

    Args:
        x: (B, H, W) float64, C-contiguous; H >= h, W >= w.
        kernel_size: (h, w).

    Returns:
        (h, w) float64.

    Example:
        >>> window_sums(np.arange(12.0).reshape(1, 3, 4), (2, 2)).tolist()
        [[18.0, 24.0], [42.0, 48.0]]
    """
    sums: np.ndarray = _window_sums(x, *kernel_size)
    return sums


def window_gram(x: np.ndarray, kernel_size: tuple[int, int]) -> np.ndarray:
    """``G[t, s] = sum over images of sum(X_t * X_s)``: the Gram matrix of the "valid" windows of an h x w kernel.

    Args:
        x: (B, H, W) float64, C-contiguous: B images sharing one kernel; H >= h, W >= w.
        kernel_size: (h, w).

    Returns:
        (h*w, h*w) float64, taps in row-major order (``t = i * w + j``), symmetric.

    Example:
        >>> x = np.arange(12.0).reshape(1, 3, 4)
        >>> g = window_gram(x, (2, 2))
        >>> bool(np.isclose(g[0, 3], (x[0, :2, :3] * x[0, 1:, 1:]).sum()))
        True
    """
    h, w = kernel_size
    groups = np.array(
        [(a, c, min(c + _LAGS_PER_GROUP, w)) for a in range(h) for c in range(-w + 1 if a else 0, w, _LAGS_PER_GROUP)],
        dtype=np.int64,
    )
    gram = np.empty((h * w, h * w))
    seconds = _SECONDS_PER_MAC * (2 * h - 1) * w * x.size
    run_tasks(_lag_entries, (x, h, w, groups), (gram,), len(groups), seconds)
    return gram
