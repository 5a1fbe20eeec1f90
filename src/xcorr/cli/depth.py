"""Filtered float samples -> the output file's dtype: the one documented conversion.

Filtering happens in float64 on the raw sample values (0-255 for 8-bit, 0-65535 for 16-bit, floats as stored).
Writing converts to the output dtype (by default the input's):

- the *full scale* of a dtype is its maximum for integers and 1.0 for floats; when the output dtype differs from
  the input's, values are multiplied by ``full_scale(out) / full_scale(in)`` (8-bit 255 -> 16-bit 65535, 16-bit
  65535 -> float 1.0), so an unfiltered image converts the way image tools do;
- ``normalize=True`` instead maps the result's [min, max] linearly onto [0, full_scale(out)];
- integer outputs are rounded half to even, then clipped to the dtype's range; the number of clipped samples is
  returned so the caller can say so. NaN becomes 0 (and counts as clipped). Float outputs are cast, never clipped.

An identity kernel therefore writes back exactly the samples it read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Converted:
    """Samples in the output dtype and how many of them were clipped to its range."""

    samples: np.ndarray
    clipped: int


def full_scale(dtype: np.dtype) -> float:
    """The value that means "full intensity": the maximum of an integer dtype, 1.0 for floats.

    Example:
        >>> full_scale(np.dtype(np.uint16))
        65535.0
    """
    return float(np.iinfo(dtype).max) if dtype.kind in "ui" else 1.0


def convert_samples(values: np.ndarray, source: np.dtype, target: np.dtype, *, normalize: bool) -> Converted:
    """Convert float ``values`` (computed in ``source``'s units) to ``target`` as described in the module docstring.

    Example:
        >>> convert_samples(np.array([-3.0, 127.6, 300.0]), np.dtype(np.uint8), np.dtype(np.uint8), normalize=False)
        Converted(samples=array([  0, 128, 255], dtype=uint8), clipped=2)
    """
    top = full_scale(target)
    if normalize:
        low, high = (float(np.nanmin(values)), float(np.nanmax(values))) if values.size else (0.0, 0.0)
        span = high - low
        scaled = (values - low) * (top / span) if span > 0 else np.zeros_like(values)
    elif target == source:
        scaled = values
    else:
        scaled = values * (top / full_scale(source))
    if target.kind == "f":
        return Converted(scaled.astype(target), 0)
    info = np.iinfo(target)
    rounded = np.rint(scaled)
    outside = np.isnan(rounded) | (rounded < info.min) | (rounded > info.max)
    clipped = np.clip(np.nan_to_num(rounded, nan=0.0), info.min, info.max).astype(target)
    return Converted(clipped, int(np.count_nonzero(outside)))
