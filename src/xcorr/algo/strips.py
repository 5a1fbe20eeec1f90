"""Border strips: copies of the few input columns a border output reads, extended past the image's edge.

Shared by the numba kernels of :mod:`~xcorr.algo.direct` and :mod:`~xcorr.algo.fourrows`: the interior of a row
is read in place, and the outputs whose taps reach past the edge read a strip filled here, so no sweep tests a
column. The column map says which input column each padded column reads (:func:`xcorr.padding.source_indices`):
-1 for zero padding, a reflected, wrapped or repeated column for the other boundaries.
"""

from __future__ import annotations

import numba


@numba.njit(inline="always")  # compiled into each caller (a separate compile would only add first-use time)
def extend_line(line, source, col_source, first, stop, offset):  # type: ignore[no-untyped-def]
    """``line[c] = source[col_source[offset + c]]`` for ``first <= c < stop``; 0 where that index is -1.

    Example:
        >>> import numpy as np
        >>> line = np.empty(5)
        >>> extend_line.py_func(line, np.array([1.0, 2.0, 3.0]), np.array([1, 0, 1, 2, 1]), 0, 5, 0)
        >>> line.tolist()
        [2.0, 1.0, 2.0, 3.0, 2.0]
    """
    for c in range(first, stop):
        column = col_source[offset + c]
        line[c] = source[column] if column >= 0 else 0
