"""The best matches in a score map: greedy peak picking with a minimum distance and subpixel refinement."""

from __future__ import annotations

import numpy as np
import torch

from xcorr import arguments
from xcorr.arguments import ArrayLike


def peaks(
    scores: ArrayLike,
    *,
    count: int = 1,
    min_distance: int | None = None,
    subpixel: bool = True,
    smallest: bool = False,
) -> np.ndarray:
    """The ``count`` best placements of each template, as rows ``(template, row, column, score)``.

    Args:
        scores: (Ho, Wo) or (n, Ho, Wo), as :func:`xcorr.match_template` returns (NumPy or torch).
        count: peaks per template, best first; fewer where the map runs out of placements.
        min_distance: peaks of one template lie more than this many pixels apart along some axis (each pick
            rules out the (2 d + 1)² square around it); ``None``: 1, so two neighbours are never both picked.
        subpixel: refine each position by the vertex of the parabola through the peak and its two neighbours,
            along each axis (at most half a pixel; none on the map's edge or where the parabola is flat).
        smallest: the lowest scores are the best (``"sqdiff"`` and ``"sqdiff_normed"``).

    Returns:
        (k, 4) float64: template index (0 for a 2-D map), row, column (fractional with ``subpixel``) and the score
        at the integer peak, sorted by template then rank. NaN scores are never picked.

    Example:
        >>> s = np.zeros((5, 6)); s[2, 3] = 1.0; s[2, 4] = 0.5
        >>> peaks(s).round(3).tolist()
        [[0.0, 2.0, 3.167, 1.0]]
    """
    count = arguments.integer(count, "count")
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    distance = 1 if min_distance is None else arguments.integer(min_distance, "min_distance")
    if distance < 0:
        raise ValueError(f"min_distance must be at least 0, got {distance}")
    values = scores.detach().cpu().numpy() if isinstance(scores, torch.Tensor) else np.asarray(scores)
    if values.ndim not in (2, 3) or values.dtype.kind not in "iuf":
        raise ValueError(f"scores must be a real (Ho, Wo) or (n, Ho, Wo) map, got shape {values.shape}")
    maps = values[None] if values.ndim == 2 else values
    rows = [
        row
        for index, plane in enumerate(maps)
        for row in _plane_peaks(plane, index, count, distance, subpixel, smallest)
    ]
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def _plane_peaks(
    plane: np.ndarray, index: int, count: int, distance: int, subpixel: bool, smallest: bool
) -> list[tuple[float, float, float, float]]:
    ranked = np.where(np.isnan(plane), -np.inf, -plane if smallest else plane).astype(np.float64)
    found = []
    for _ in range(count):
        flat = int(np.argmax(ranked))
        r, c = divmod(flat, plane.shape[1])
        if ranked[r, c] == -np.inf:
            break
        row, col = float(r), float(c)
        if subpixel:
            row += _vertex(plane[max(r - 1, 0) : r + 2, c])
            col += _vertex(plane[r, max(c - 1, 0) : c + 2])
        found.append((float(index), row, col, float(plane[r, c])))
        ranked[max(r - distance, 0) : r + distance + 1, max(c - distance, 0) : c + distance + 1] = -np.inf
    return found


def _vertex(line: np.ndarray) -> float:
    """Offset of the vertex of the parabola through three samples centred on the peak (0 on an edge, where fewer
    than three are given, or a flat)."""
    if len(line) != 3 or not np.isfinite(line).all():
        return 0.0
    before, peak, after = (float(v) for v in line)
    curvature = before - 2 * peak + after
    if curvature == 0:
        return 0.0
    return float(np.clip(0.5 * (before - after) / curvature, -0.5, 0.5))
