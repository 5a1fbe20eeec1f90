"""Where each output pixel of ``filter2d`` sits on the input grid, for planes that move without being filtered.

``filter2d`` follows ``scipy.signal.correlate2d``: output pixel ``o`` of ``mode="same"`` reads the window whose
anchor, the kernel cell ``((kh - 1) // 2, (kw - 1) // 2)``, lies on input pixel ``o`` (the centre for odd sizes,
the cell before it for even ones). "valid" outputs are anchored ``(kh - 1) // 2`` rows inside the image, "full"
outputs ``kh - 1 - (kh - 1) // 2`` rows outside it (likewise columns).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Boundary = Literal["constant", "reflect", "symmetric", "edge", "wrap"]
"""``numpy.pad``'s names for how an image extends past its edge (``filter2d``'s ``boundary``)."""


def follow_output_grid(plane: np.ndarray, kernel_shape: tuple[int, int], mode: str, boundary: Boundary) -> np.ndarray:
    """The samples of ``plane`` (..., H, W) under each output pixel's kernel anchor, shaped like the output.

    Used for the alpha channel: it is carried along, not filtered. Anchors outside the image (``mode="full"``)
    take ``boundary``'s value, 0 (transparent) for "constant".

    Example:
        >>> follow_output_grid(np.arange(12).reshape(3, 4), (1, 3), "valid", "constant")
        array([[ 1,  2],
               [ 5,  6],
               [ 9, 10]])
        >>> follow_output_grid(np.arange(4).reshape(1, 4), (1, 2), "full", "constant")
        array([[0, 0, 1, 2, 3]])
    """
    kh, kw = kernel_shape
    height, width = plane.shape[-2:]
    sizes = {
        "valid": (height - kh + 1, width - kw + 1),
        "same": (height, width),
        "full": (height + kh - 1, width + kw - 1),
    }
    out_h, out_w = sizes[mode]
    # Offsets of the first output anchor in the input, in a frame padded by (k - 1) on every side.
    start_h = {"valid": kh - 1, "same": kh // 2, "full": 0}[mode] + (kh - 1) // 2
    start_w = {"valid": kw - 1, "same": kw // 2, "full": 0}[mode] + (kw - 1) // 2
    widths = [(0, 0)] * (plane.ndim - 2) + [(kh - 1, kh - 1), (kw - 1, kw - 1)]
    padded = np.pad(plane, widths, mode=boundary)  # "constant" pads with 0: transparent alpha
    return padded[..., start_h : start_h + out_h, start_w : start_w + out_w]
