"""Independent float64 references, written as plainly as possible: loops over output pixels."""

import numpy as np


def naive_correlate(
    x: np.ndarray,
    w: np.ndarray,
    stride: tuple[int, int] = (1, 1),
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    dilation: tuple[int, int] = (1, 1),
    groups: int = 1,
) -> np.ndarray:
    """y[n, o, i, j] = sum over the window of zero-padded x (o's group) times w[o], in float64."""
    x = np.pad(np.asarray(x, np.float64), ((0, 0), (0, 0), (padding[0], padding[1]), (padding[2], padding[3])))
    w = np.asarray(w, np.float64)
    n, _, h, wid = x.shape
    o, cg, kh, kw = w.shape
    ho = (h - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wid - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    y = np.zeros((n, o, ho, wo))
    per_group = o // groups
    for b in range(n):
        for out in range(o):
            channels = slice(out // per_group * cg, (out // per_group + 1) * cg)
            for i in range(ho):
                for j in range(wo):
                    rows = slice(i * stride[0], i * stride[0] + dilation[0] * (kh - 1) + 1, dilation[0])
                    cols = slice(j * stride[1], j * stride[1] + dilation[1] * (kw - 1) + 1, dilation[1])
                    y[b, out, i, j] = np.sum(x[b, channels, rows, cols] * w[out])
    return y


def extended(
    image: np.ndarray, kernel_shape: tuple[int, ...], mode: str = "same", boundary: str = "constant", cval: float = 0.0
) -> np.ndarray:
    """One (H, W) plane in float64, numpy.pad-ed by the mode's sizes (SciPy's alignment) with the boundary: a valid
    correlation of it is the documented definition of filter2d."""
    kh, kw = kernel_shape
    pads = {
        "valid": ((0, 0), (0, 0)),
        "same": (((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2)),
        "full": ((kh - 1, kh - 1), (kw - 1, kw - 1)),
    }[mode]
    extra = {"constant_values": cval} if boundary == "constant" else {}
    return np.pad(np.asarray(image, np.float64), pads, mode=boundary, **extra)


def naive_filter(
    image: np.ndarray, kernel: np.ndarray, mode: str = "same", boundary: str = "constant", cval: float = 0.0
) -> np.ndarray:
    """One (H, W) plane: :func:`extended`, then the float64 loop."""
    padded = extended(image, kernel.shape, mode, boundary, cval)
    return naive_correlate(padded[None, None], np.asarray(kernel, np.float64)[None, None])[0, 0]
