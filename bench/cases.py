"""The case table: what is filtered, at which sizes, with which kernels, and the bar each case must meet.

Two kinds of case:

- ``filter``: one 2-D kernel over every (H, W) slice of an image, ``"same"`` output size, zeros outside the
  image (``xcorr.filter2d`` beside OpenCV, SciPy and torch). ``layout`` says how the slices are laid out:
  ``gray`` (H, W), ``rgb`` (3, H, W) (OpenCV gets H x W x 3) or ``stack`` (B, H, W) (OpenCV loops).
- ``layer``: ``conv2d`` with zero padding ``k // 2`` (``xcorr.conv2d`` beside torch and fft-conv-pytorch),
  forward only or forward + ``sum().backward()``.

Inputs are drawn from a generator seeded by ``seed`` and the case name, so every run and every peer sees the
same numbers.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace

import numpy as np

# Cases whose images are at least this many pixels on each side are first run on a crop PROBE_SHRINK times
# smaller on each side, to estimate each peer's time and memory before committing to the full size.
PROBE_MIN_SIDE = 512
PROBE_SHRINK = 4


@dataclass(frozen=True)
class Bar:
    """``time(xcorr) <= factor * time(peer)``: one bar of issue 3."""

    peer: str
    factor: float = 1.0

    def __str__(self) -> str:
        return f"<= {self.peer}" if self.factor == 1.0 else f"<= {self.factor:g}x {self.peer}"


@dataclass(frozen=True)
class Case:
    """One benchmark case.

    Attributes:
        name: unique label used in the tables and the JSON.
        kind: ``"filter"`` or ``"layer"`` (see the module docstring).
        image_shape: filter: (H, W), (3, H, W) or (B, H, W); layer: (N, C, H, W).
        kernel_size: odd side k of the square kernel.
        dtype: ``"float32"`` or ``"float64"``.
        layout: filter cases only: ``"gray"``, ``"rgb"`` or ``"stack"``.
        out_channels, groups: layer cases only, as ``torch.nn.functional.conv2d``.
        gaussian: the kernel is a sampled Gaussian (an outer product of two 1-D factors), else random.
        backward: layer cases only: time forward + ``sum().backward()``.
        series: cases sharing a series are plotted as one line against the kernel size.
        bars: what xcorr must beat (all of them) in this case.
    """

    name: str
    kind: str
    image_shape: tuple[int, ...]
    kernel_size: int
    dtype: str = "float32"
    layout: str = "gray"
    out_channels: int = 1
    groups: int = 1
    gaussian: bool = False
    backward: bool = False
    series: str = ""
    bars: tuple[Bar, ...] = ()

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        """Layer cases: (O, C // groups, k, k)."""
        k = self.kernel_size
        return self.out_channels, self.image_shape[1] // self.groups, k, k

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Filter cases keep the image's shape; layer cases (padding k // 2) give (N, O, H, W)."""
        if self.kind == "filter":
            return self.image_shape
        n, _, h, w = self.image_shape
        return n, self.out_channels, h, w

    @property
    def result_bytes(self) -> int:
        """Bytes of what one call returns: the output, plus both gradients for backward cases."""
        itemsize = np.dtype(self.dtype).itemsize
        count = int(np.prod(self.output_shape))
        if self.backward:
            count += int(np.prod(self.image_shape)) + int(np.prod(self.weight_shape))
        return count * itemsize

    def miniature(self) -> Case:
        """The same case on a tiny image (one batch item for layers): same dtypes, layouts and kernel."""
        side = self.kernel_size + 4
        leading = self.image_shape[:-2] if self.kind == "filter" else (1, self.image_shape[1])
        return replace(self, name=f"{self.name} (miniature)", image_shape=(*leading, side, side))

    def probe(self) -> tuple[Case, float] | None:
        """A cropped copy of this case for estimating cost, and the ratio of full to cropped work; None if small."""
        h, w = self.image_shape[-2:]
        if min(h, w) < PROBE_MIN_SIDE:
            return None
        shape = (*self.image_shape[:-2], h // PROBE_SHRINK, w // PROBE_SHRINK)
        ratio = (h * w) / (shape[-2] * shape[-1])
        return replace(self, name=f"{self.name} (probe)", image_shape=shape), ratio


@dataclass(frozen=True)
class Inputs:
    """The arrays of one case: ``image`` (``Case.image_shape``), ``kernel`` ((k, k) for filter cases, the
    weight for layer cases) and, for Gaussian kernels, the 1-D ``factors`` (column, row) with
    ``kernel == outer(column, row)``."""

    image: np.ndarray
    kernel: np.ndarray
    factors: tuple[np.ndarray, np.ndarray] | None = None


def gaussian_1d(size: int) -> np.ndarray:
    """The normalised 1-D Gaussian OpenCV's ``getGaussianKernel(size, 0)`` samples (sigma from the size), float64."""
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    t = np.arange(size) - (size - 1) / 2
    g: np.ndarray = np.exp(-(t**2) / (2 * sigma**2))
    return g / float(g.sum())


def make_inputs(case: Case, seed: int) -> Inputs:
    """Seeded inputs for ``case``: images uniform in [0, 1), random kernels normal / k, layer inputs normal."""
    rng = np.random.default_rng([seed, zlib.crc32(case.name.split(" (")[0].encode())])
    dtype = np.dtype(case.dtype)
    k = case.kernel_size
    if case.kind == "layer":
        image = rng.standard_normal(case.image_shape).astype(dtype)
        fan_in = case.weight_shape[1] * k * k
        return Inputs(image, (rng.standard_normal(case.weight_shape) / np.sqrt(fan_in)).astype(dtype))
    image = rng.random(case.image_shape, dtype=np.float64).astype(dtype)
    if case.gaussian:
        g = gaussian_1d(k)
        return Inputs(image, np.outer(g, g).astype(dtype), (g.astype(dtype), g.astype(dtype)))
    return Inputs(image, (rng.standard_normal((k, k)) / k).astype(dtype))


@dataclass(frozen=True)
class Sizes:
    """The shapes of one preset of the table (``FULL`` is issue 3's; ``QUICK`` and ``TINY`` shrink it)."""

    gray_side: int
    gray_kernels: tuple[int, ...]
    gaussian_kernels: tuple[int, ...]
    depthwise: tuple[int, int, int]  # N, C, side
    depthwise_kernels: tuple[int, ...]
    dense: tuple[int, int, int]  # N, C (= O), side
    rgb: tuple[int, int]  # H, W
    stack: tuple[int, int]  # B, side
    stack_kernel: int
    float64_side: int
    float64_kernel: int


FULL = Sizes(
    2048, (3, 7, 15, 31, 63), (7, 31, 63), (8, 64, 64), (7, 31), (16, 64, 56), (1080, 1920), (64, 64), 5, 2048, 31
)
QUICK = Sizes(192, (3, 7, 31), (7, 31), (2, 16, 32), (7, 31), (2, 16, 28), (135, 240), (8, 32), 5, 192, 15)
TINY = Sizes(40, (3, 7, 15), (7, 15), (2, 4, 16), (3, 7), (2, 8, 12), (24, 32), (4, 16), 5, 40, 7)

# The peers' names, as the tables print them (bench/peers.py defines one function per name).
COPY = "copy"
CV2_FILTER = "cv2.filter2D"
CV2_SEP = "cv2.sepFilter2D"
OACONVOLVE = "scipy oaconvolve"
NDIMAGE = "scipy ndimage"
TORCH = "torch conv2d"
FFT_CONV = "fft-conv-pytorch"
PEER_NAMES = (COPY, CV2_FILTER, CV2_SEP, OACONVOLVE, NDIMAGE, TORCH, FFT_CONV)


def _gray_bars(k: int) -> tuple[Bar, ...]:
    return (Bar(CV2_FILTER), Bar(COPY, 2.0)) if k == 3 else (Bar(CV2_FILTER),)


def _depthwise_bars(k: int) -> tuple[Bar, ...]:
    return (Bar(TORCH, 0.1), Bar(FFT_CONV, 0.5)) if k >= 31 else (Bar(TORCH),)


def table(sizes: Sizes = FULL) -> list[Case]:
    """Every case of one preset, in the order the report lists them."""
    s = sizes.gray_side
    cases = [
        Case(f"gray {s}x{s} k{k}", "filter", (s, s), k, series="gray", bars=_gray_bars(k)) for k in sizes.gray_kernels
    ]
    cases += [
        Case(f"gaussian {s}x{s} k{k}", "filter", (s, s), k, gaussian=True, series="gaussian", bars=(Bar(CV2_SEP, 1.2),))
        for k in sizes.gaussian_kernels
    ]
    n, c, side = sizes.depthwise
    cases += [
        Case(
            f"depthwise {n}x{c}x{side}x{side} k{k} fwd+bwd",
            "layer",
            (n, c, side, side),
            k,
            out_channels=c,
            groups=c,
            backward=True,
            bars=_depthwise_bars(k),
        )
        for k in sizes.depthwise_kernels
    ]
    n, c, side = sizes.dense
    for backward in (False, True):
        cases.append(
            Case(
                f"dense {n}x{c}->{c}x{side}x{side} k3 {'fwd+bwd' if backward else 'fwd'}",
                "layer",
                (n, c, side, side),
                3,
                out_channels=c,
                backward=backward,
                bars=(Bar(TORCH, 1.05),),
            )
        )
    h, w = sizes.rgb
    cases.append(Case(f"rgb 3x{h}x{w} k5", "filter", (3, h, w), 5, layout="rgb"))
    b, side = sizes.stack
    cases.append(
        Case(
            f"stack {b}x{side}x{side} k{sizes.stack_kernel}",
            "filter",
            (b, side, side),
            sizes.stack_kernel,
            layout="stack",
        )
    )
    s, k = sizes.float64_side, sizes.float64_kernel
    cases.append(Case(f"float64 gray {s}x{s} k{k}", "filter", (s, s), k, dtype="float64"))
    return cases
