"""Images as people have them: every boundary, 8/16-bit photos channels last, beside OpenCV, SciPy and libvips.

``python -m bench.images [--quick]``. Three tables, each timed in interleaved rounds in one process
(:func:`bench.timing.repeat_in_rounds`), medians per call, with the machine header first:

1. float32 images (2048x2048 grey, RGB 1080p as planes and channels last, a 64-image stack), each boundary:
   ``xcorr.filter2d`` and its time over ``constant``'s, ``cv2.filter2D`` with the matching border (it has no
   ``wrap``; plane by plane for a stack), ``scipy.ndimage.correlate`` (its mode names).
2. 2048x2048 float32, ``constant``, kernels 3-63: ``xcorr.filter2d`` over ``cv2.filter2D``.
3. uint8 RGB photos (1080p, 4K) channels last and a uint16 grey 2048x2048, ``reflect``: ``xcorr.filter2d(...,
   channel_axis=-1, dtype=<the input's>)`` beside ``cv2.filter2D(img, -1, k, BORDER_REFLECT_101)`` (same dtype in
   and out), ``scipy.ndimage.correlate`` and ``pyvips`` ``conv`` (libvips; it extends edges by copying, its only
   border), with xcorr's largest difference to OpenCV's values.

Kernels are seeded random positive blurs (sum 1), so 8-bit results stay in range and differences are rounding.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import scipy.ndimage

import xcorr
from bench.machine import start_run
from bench.timing import Policy, median_ms

CV2_BORDERS = {
    "constant": cv2.BORDER_CONSTANT,
    "reflect": cv2.BORDER_REFLECT_101,
    "symmetric": cv2.BORDER_REFLECT,
    "edge": cv2.BORDER_REPLICATE,
}
NDIMAGE_MODES = {"constant": "constant", "reflect": "mirror", "symmetric": "reflect", "edge": "nearest", "wrap": "wrap"}
BOUNDARIES = ("constant", "reflect", "symmetric", "edge", "wrap")


def blur(size: int, rng: np.random.Generator) -> np.ndarray:
    """A random positive size x size kernel summing to 1 (float32)."""
    k = rng.random((size, size)).astype(np.float32) + 0.1
    return k / k.sum()


def _xcorr(image: np.ndarray, k: np.ndarray, **options: object) -> Callable[[], object]:
    return lambda: xcorr.filter2d(image, k, **options)  # type: ignore[call-overload]


def _cv2(image: np.ndarray, k: np.ndarray, boundary: str) -> Callable[[], object]:
    """``cv2.filter2D``: on the image itself (a plane, or channels last), or plane by plane for a stack."""
    if image.ndim == 3 and image.shape[-1] > 4:
        return lambda: [cv2.filter2D(plane, -1, k, borderType=CV2_BORDERS[boundary]) for plane in image]
    return lambda: cv2.filter2D(image, -1, k, borderType=CV2_BORDERS[boundary])


def _ndimage(image: np.ndarray, k: np.ndarray, boundary: str) -> Callable[[], object]:
    weights = k[:, :, None] if image.ndim == 3 and image.shape[-1] <= 4 else k[None] if image.ndim == 3 else k
    return lambda: scipy.ndimage.correlate(image, weights, mode=NDIMAGE_MODES[boundary])


def _pyvips(image: np.ndarray, k: np.ndarray) -> Callable[[], object] | None:
    try:
        import pyvips
    except ImportError:
        return None
    mask = pyvips.Image.new_from_array(k.astype(np.float64).tolist())
    fmt = {np.dtype(np.uint8): "uchar", np.dtype(np.uint16): "ushort"}[image.dtype]
    source = pyvips.Image.new_from_array(image)
    return lambda: source.conv(mask, precision="float").cast(fmt).numpy()


def boundaries_table(
    images: dict[str, tuple[tuple[int, ...], tuple[int, ...]]], policy: Policy, rng: np.random.Generator
) -> None:
    print("\n### float32 images, every boundary\n")
    print("| image | kernel | boundary | xcorr ms | over constant | cv2.filter2D ms | xcorr / cv2 | ndimage ms |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, (shape, kernels, axis) in images.items():
        image = rng.random(shape).astype(np.float32)
        for ksize in kernels:
            k = blur(ksize, rng)
            calls: dict[str, Callable[[], object]] = {}
            for boundary in BOUNDARIES:
                calls[f"xcorr {boundary}"] = _xcorr(image, k, boundary=boundary, channel_axis=axis)
                if boundary in CV2_BORDERS:
                    calls[f"cv2 {boundary}"] = _cv2(image, k, boundary)
                if ksize <= 5:  # ndimage is direct and single-threaded: 31x31 takes seconds
                    calls[f"ndimage {boundary}"] = _ndimage(image, k, boundary)
            ms = median_ms(calls, policy)
            for boundary in BOUNDARIES:
                ours, theirs = ms[f"xcorr {boundary}"], ms.get(f"cv2 {boundary}")
                ratio = f"{ours / theirs:.2f}" if theirs else "no wrap"
                ndimage = ms.get(f"ndimage {boundary}")
                print(
                    f"| {name} | {ksize}x{ksize} | {boundary} | {ours:.2f} | {ours / ms['xcorr constant']:.2f} | "
                    f"{theirs or float('nan'):.2f} | {ratio} | {ndimage or float('nan'):.1f} |"
                )


def kernels_table(size: int, kernels: tuple[int, ...], policy: Policy, rng: np.random.Generator) -> None:
    image = rng.random((size, size)).astype(np.float32)
    print(f"\n### {size}x{size} float32, constant, kernel sizes\n")
    print("| kernel | xcorr ms | cv2.filter2D ms | xcorr / cv2 |")
    print("| --- | --- | --- | --- |")
    for ksize in kernels:
        k = blur(ksize, rng)
        ms = median_ms({"xcorr": _xcorr(image, k), "cv2": _cv2(image, k, "constant")}, policy)
        print(f"| {ksize}x{ksize} | {ms['xcorr']:.1f} | {ms['cv2']:.1f} | {ms['xcorr'] / ms['cv2']:.2f} |")


def photos_table(
    photos: dict[str, np.ndarray], kernels: tuple[int, ...], policy: Policy, rng: np.random.Generator
) -> None:
    print("\n### Photos, reflect, same dtype in and out\n")
    print("| photo | kernel | xcorr ms | cv2.filter2D ms | xcorr / cv2 | max diff to cv2 | ndimage ms | pyvips ms |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, image in photos.items():
        axis = -1 if image.ndim == 3 else None
        for ksize in kernels:
            k = blur(ksize, rng)

            def ours(image: np.ndarray = image, k: np.ndarray = k, axis: int | None = axis) -> np.ndarray:
                return xcorr.filter2d(image, k, boundary="reflect", channel_axis=axis, dtype=image.dtype)

            calls = {"xcorr": ours, "cv2": _cv2(image, k, "reflect")}
            if ksize <= 7:
                calls["ndimage"] = _ndimage(image, k, "reflect")
            vips = _pyvips(image, k)
            if vips is not None:
                calls["pyvips"] = vips
            ms = median_ms(calls, policy)
            difference = int(np.abs(ours().astype(np.int64) - calls["cv2"]().astype(np.int64)).max())
            print(
                f"| {name} | {ksize}x{ksize} | {ms['xcorr']:.1f} | {ms['cv2']:.1f} | {ms['xcorr'] / ms['cv2']:.2f} | "
                f"{difference} | {ms.get('ndimage', float('nan')):.1f} | {ms.get('pyvips', float('nan')):.1f} |"
            )


def main(argv: list[str] | None = None) -> None:
    rng, policy, scale = start_run("python -m bench.images", __doc__.splitlines()[0], argv)
    boundaries_table(
        {
            f"gray {2048 // scale}²": ((2048 // scale, 2048 // scale), (3, 5, 9, 31), None),
            f"rgb planes 3x{1080 // scale}x{1920 // scale}": ((3, 1080 // scale, 1920 // scale), (5, 31), None),
            f"rgb channels last {1080 // scale}x{1920 // scale}x3": ((1080 // scale, 1920 // scale, 3), (5,), -1),
            "stack 64x64x64": ((64, 64, 64), (5,), None),
        },
        policy,
        rng,
    )
    kernels_table(2048 // scale, (3, 5, 7, 9, 15, 31, 63), policy, rng)
    photos = {
        "RGB 1080p uint8": rng.integers(0, 256, (1080 // scale, 1920 // scale, 3), dtype=np.uint8),
        "RGB 4K uint8": rng.integers(0, 256, (2160 // scale, 3840 // scale, 3), dtype=np.uint8),
        "grey 2048² uint16": rng.integers(0, 65536, (2048 // scale, 2048 // scale), dtype=np.uint16),
    }
    photos_table(photos, (3, 5, 7, 15), policy, rng)


if __name__ == "__main__":
    main()
