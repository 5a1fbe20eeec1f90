"""Named 2-D kernels, as float64 NumPy arrays for correlation (``xcorr.filter2d``), not convolution.

Derivative kernels respond positively where the image increases along their axis (x: left to right, y: top
to bottom). ``by_name("gaussian:7,1.5")`` turns the spellings the CLI accepts into kernels.

Example:
    >>> import numpy as np, xcorr
    >>> xcorr.filter2d(np.array([[0.0, 0.0, 1.0, 1.0]]), edge(), mode="valid")
    array([[0., 1., 0.]])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np


def _outer(column: Sequence[float] | np.ndarray, row: Sequence[float] | np.ndarray) -> np.ndarray:
    return np.asarray(column, dtype=np.float64)[:, None] * np.asarray(row, dtype=np.float64)[None, :]


def edge() -> np.ndarray:
    """The notebook's horizontal edge detector ``[[-1, 1]]`` (1x2): ``x[i, j+1] - x[i, j]``."""
    return np.array([[-1.0, 1.0]])


def sobel_x() -> np.ndarray:
    """Sobel derivative along x (3x3): smoothing ``[1, 2, 1]`` down, difference ``[-1, 0, 1]`` across."""
    return _outer([1.0, 2.0, 1.0], [-1.0, 0.0, 1.0])


def sobel_y() -> np.ndarray:
    """Sobel derivative along y (3x3), the transpose of :func:`sobel_x`."""
    return _outer([-1.0, 0.0, 1.0], [1.0, 2.0, 1.0])


def prewitt_x() -> np.ndarray:
    """Prewitt derivative along x (3x3): box smoothing down, difference across."""
    return _outer([1.0, 1.0, 1.0], [-1.0, 0.0, 1.0])


def prewitt_y() -> np.ndarray:
    """Prewitt derivative along y (3x3), the transpose of :func:`prewitt_x`."""
    return _outer([-1.0, 0.0, 1.0], [1.0, 1.0, 1.0])


def scharr_x() -> np.ndarray:
    """Scharr derivative along x (3x3), better rotational symmetry than Sobel: ``[3, 10, 3]`` x ``[-1, 0, 1]``."""
    return _outer([3.0, 10.0, 3.0], [-1.0, 0.0, 1.0])


def scharr_y() -> np.ndarray:
    """Scharr derivative along y (3x3), the transpose of :func:`scharr_x`."""
    return _outer([-1.0, 0.0, 1.0], [3.0, 10.0, 3.0])


def laplacian() -> np.ndarray:
    """4-neighbour Laplacian (3x3): ``[[0, 1, 0], [1, -4, 1], [0, 1, 0]]``; zero on linear ramps."""
    return np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def sharpen() -> np.ndarray:
    """Unsharp 3x3 kernel ``[[0, -1, 0], [-1, 5, -1], [0, -1, 0]]``; sums to 1, so flat areas keep their value."""
    return np.array([[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]])


def emboss() -> np.ndarray:
    """Emboss (3x3), light from the top left: ``[[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]``; sums to 1."""
    return np.array([[-2.0, -1.0, 0.0], [-1.0, 1.0, 1.0], [0.0, 1.0, 2.0]])


def box(n: int = 3) -> np.ndarray:
    """Mean over an n x n window (n x n, every entry ``1 / n**2``)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"box size must be a positive int, got {n!r}")
    return np.full((n, n), 1.0 / (n * n))


def gaussian(n: int = 3, sigma: float | None = None) -> np.ndarray:
    """Normalised n x n Gaussian, the outer product of two 1-D Gaussians (rank 1, so separable).

    ``sigma`` defaults to OpenCV's rule for ``getGaussianKernel``: ``0.3 * ((n - 1) / 2 - 1) + 0.8``.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"gaussian size must be a positive int, got {n!r}")
    s = 0.3 * ((n - 1) * 0.5 - 1) + 0.8 if sigma is None else float(sigma)
    if not s > 0 or math.isinf(s):
        raise ValueError(f"gaussian sigma must be positive and finite, got {sigma!r}")
    t = np.arange(n) - (n - 1) / 2
    g = np.exp(-(t**2) / (2 * s * s))
    g /= g.sum()
    return _outer(g, g)


NAMED: dict[str, Callable[..., np.ndarray]] = {
    "edge": edge,
    "sobel-x": sobel_x,
    "sobel-y": sobel_y,
    "prewitt-x": prewitt_x,
    "prewitt-y": prewitt_y,
    "scharr-x": scharr_x,
    "scharr-y": scharr_y,
    "laplacian": laplacian,
    "sharpen": sharpen,
    "emboss": emboss,
    "box": box,
    "gaussian": gaussian,
}
"""Every kernel by the name :func:`by_name` accepts."""


def by_name(spec: str) -> np.ndarray:
    """The kernel a name stands for, with optional parameters after a colon.

    ``"sobel-x"``, ``"edge"``, ``"box:5"`` (size), ``"gaussian:7"`` (size), ``"gaussian:7,1.5"`` (size, sigma).

    Example:
        >>> by_name("box:2")
        array([[0.25, 0.25],
               [0.25, 0.25]])
    """
    name, _, params = spec.strip().partition(":")
    factory = NAMED.get(name.strip().lower().replace("_", "-"))
    if factory is None:
        raise ValueError(f"unknown kernel name {name!r}; known names: {', '.join(NAMED)}")
    try:
        values = [float(p) for p in params.split(",")] if params.strip() else []
    except ValueError:
        raise ValueError(f"kernel parameters must be numbers, got {params!r} in {spec!r}") from None
    args: list[float | int] = [int(v) if i == 0 and v.is_integer() else v for i, v in enumerate(values)]
    try:
        return factory(*args)
    except TypeError:
        raise ValueError(f"kernel {name!r} does not take the parameters {params!r}") from None
