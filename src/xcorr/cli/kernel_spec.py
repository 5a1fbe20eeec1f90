"""``-k/--kernel``: a name from :mod:`xcorr.kernels`, a literal such as ``"[[-1,1]]"``, or a ``.npy``/``.txt`` file."""

from __future__ import annotations

import ast
import io
from pathlib import Path

import numpy as np

from xcorr import kernels
from xcorr.cli.errors import UsageError

KERNEL_FILE_SUFFIXES = (".npy", ".txt", ".csv")

KERNEL_HELP = (
    "a name from xcorr.kernels (edge, sobel-x, gaussian:7,1.5, box:5, ...), a literal such as '[[-1,1]]' "
    "(a flat list is one row), or a .npy/.txt/.csv file holding a 2-D array"
)


def parse_kernel(spec: str) -> np.ndarray:
    """The 2-D float64 kernel that ``spec`` describes.

    Example:
        >>> parse_kernel("[[-1, 1]]")
        array([[-1.,  1.]])
        >>> parse_kernel("box:3").shape
        (3, 3)

    Raises:
        UsageError: the spec is malformed, names an unknown kernel, or its file cannot be read; the message
            says which and what is accepted.
    """
    text = spec.strip()
    if not text:
        raise UsageError(f"kernel is empty; give {KERNEL_HELP}")
    if text.startswith(("[", "(")):
        return _checked(_parse_literal(text), spec)
    if Path(text).suffix.lower() in KERNEL_FILE_SUFFIXES:
        return _checked(_load_file(Path(text)), spec)
    try:
        return kernels.by_name(text)
    except ValueError as exc:
        raise UsageError(f"kernel {spec!r}: {exc}") from None


def _parse_literal(text: str) -> np.ndarray:
    try:
        value = ast.literal_eval(text)
        return np.asarray(value, dtype=np.float64)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise UsageError(
            f"kernel {text!r} is not a numeric list literal such as '[[-1, 1]]' or '[[1,2],[3,4]]'"
        ) from None


def _load_file(path: Path) -> np.ndarray:
    try:
        if path.suffix.lower() == ".npy":
            return np.asarray(np.load(path, allow_pickle=False), dtype=np.float64)
        text = path.read_text().replace(",", " ")
        return np.loadtxt(io.StringIO(text), dtype=np.float64, ndmin=2)
    except FileNotFoundError:
        raise UsageError(f"kernel file {path}: no such file") from None
    except (OSError, ValueError, TypeError) as exc:
        raise UsageError(f"kernel file {path}: cannot read a numeric 2-D array ({exc})") from None


def _checked(kernel: np.ndarray, spec: str) -> np.ndarray:
    if kernel.ndim == 1:
        kernel = kernel[None, :]
    if kernel.ndim != 2 or kernel.size == 0:
        raise UsageError(f"kernel {spec!r} has shape {kernel.shape}; it must be a non-empty 2-D array")
    if not np.isfinite(kernel).all():
        raise UsageError(f"kernel {spec!r} contains NaN or Inf")
    return kernel
