"""Template matching beside OpenCV and scikit-image: ``python -m bench.templates [--quick]``.

One table, timed in interleaved rounds in one process (:func:`bench.timing.repeat_in_rounds`), medians per call,
the machine header first. Images: 1080p and 4K grey, uint8 and float32 (seeded noise, smoothed so the scores
are not flat). Templates 8-256 px cut from the image, ``ccoeff_normed``, three cases each:

- ``one``: ``xcorr.match_template`` beside ``cv2.matchTemplate(..., TM_CCOEFF_NORMED)`` and
  ``skimage.feature.match_template``;
- ``mask``: a template mask (30% of pixels off) beside OpenCV's masked call (scikit-image has no mask);
- ``16 templates``: one call with a (16, h, w) stack beside sixteen OpenCV calls (and sixteen scikit-image calls).

Each row gives xcorr's largest difference to OpenCV's scores.

Then the large-template memory check (scikit-image#6623): a 523x768 template on a 2400x1080 image, both
orientations, uint8 and float32, each in a fresh process: the extra peak resident memory of the call (``ru_maxrss``
after it, minus before it) and the range of the scores.
"""

from __future__ import annotations

import multiprocessing
import resource
from collections.abc import Callable

import cv2
import numpy as np

import xcorr
from bench.machine import start_run
from bench.timing import Policy, median_ms


def _image(shape: tuple[int, int], dtype: type, rng: np.random.Generator) -> np.ndarray:
    noise = cv2.GaussianBlur(rng.random(shape).astype(np.float32), (0, 0), 2.0)
    scaled = (noise - noise.min()) / np.ptp(noise) * 255
    return scaled.astype(dtype)


def _skimage() -> Callable[..., np.ndarray] | None:
    try:
        from skimage.feature import match_template
    except ImportError:
        return None
    return match_template  # type: ignore[no-any-return]


def table(images: dict[str, np.ndarray], sizes: tuple[int, ...], policy: Policy, rng: np.random.Generator) -> None:
    skimage = _skimage()
    print("\n### Template matching, ccoeff_normed\n")
    print(
        "| image | template | case | xcorr ms | cv2 ms | xcorr / cv2 | skimage ms | xcorr / skimage | max diff to cv2 |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, image in images.items():
        for size in sizes:
            corners = rng.integers(0, np.array(image.shape) - size, (16, 2))
            stack = np.stack([image[r : r + size, c : c + size] for r, c in corners])
            one = stack[0]
            mask = (rng.random((size, size)) > 0.3).astype(np.uint8)
            cases: dict[str, dict[str, Callable[[], object]]] = {
                "one": {
                    "xcorr": lambda one=one, image=image: xcorr.match_template(image, one),
                    "cv2": lambda one=one, image=image: cv2.matchTemplate(image, one, cv2.TM_CCOEFF_NORMED),
                },
                "mask": {
                    "xcorr": lambda one=one, mask=mask, image=image: xcorr.match_template(image, one, mask=mask),
                    "cv2": lambda one=one, mask=mask, image=image: cv2.matchTemplate(
                        image, one, cv2.TM_CCOEFF_NORMED, mask=mask
                    ),
                },
                "16 templates": {
                    "xcorr": lambda stack=stack, image=image: xcorr.match_template(image, stack),
                    "cv2": lambda stack=stack, image=image: [
                        cv2.matchTemplate(image, t, cv2.TM_CCOEFF_NORMED) for t in stack
                    ],
                },
            }
            if skimage is not None:
                cases["one"]["skimage"] = lambda one=one, image=image: skimage(image, one)
                if size <= 64:  # sixteen scikit-image calls on large templates take tens of seconds
                    cases["16 templates"]["skimage"] = lambda stack=stack, image=image: [
                        skimage(image, t) for t in stack
                    ]
            for case, calls in cases.items():
                ms = median_ms(calls, policy)
                ours, theirs = calls["xcorr"](), calls["cv2"]()
                difference = float(np.abs(np.asarray(ours) - np.asarray(theirs)).max())
                sk = ms.get("skimage")
                sk_cells = f"{sk:.1f} | {ms['xcorr'] / sk:.2f}" if sk else "- | -"
                print(
                    f"| {name} | {size}x{size} | {case} | {ms['xcorr']:.1f} | {ms['cv2']:.1f} | "
                    f"{ms['xcorr'] / ms['cv2']:.2f} | {sk_cells} | {difference:.1e} |"
                )


def _large_template_call(shape: tuple[int, int], dtype: str, seed: int) -> tuple[float, float, float]:
    """In a fresh process: extra peak MB of one 523x768 ``ccoeff_normed`` call, and the scores' min and max."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, shape, dtype=np.uint8).astype(dtype)
    template = image[200 : 200 + 523, 100 : 100 + 768].copy()
    xcorr.match_template(image[:600, :900], template[:60, :80])  # compiled kernels loaded before measuring
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scores = np.asarray(xcorr.match_template(image, template))
    extra_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    return extra_mb, float(scores.min()), float(scores.max())


def memory_table(seed: int) -> None:
    print("\n| image (H x W) | dtype | template | extra peak MB | scores min | scores max | within [-1, 1] |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        for shape in ((1080, 2400), (2400, 1080)):
            for dtype in ("uint8", "float32"):
                extra, low, high = pool.apply(_large_template_call, (shape, dtype, seed))
                inside = "yes" if low >= -1.0 and high <= 1.0 else "no"
                row = f"| {shape[0]}x{shape[1]} | {dtype} | 523x768 | {extra:.0f} | {low:.6f} | {high:.6f} | {inside} |"
                print(row)


def main(argv: list[str] | None = None) -> None:
    rng, policy, scale = start_run("python -m bench.templates", __doc__.splitlines()[0], argv)
    images = {
        f"grey {1920 // scale}x{1080 // scale} uint8": _image((1080 // scale, 1920 // scale), np.uint8, rng),
        f"grey {1920 // scale}x{1080 // scale} float32": _image((1080 // scale, 1920 // scale), np.float32, rng),
        f"grey {3840 // scale}x{2160 // scale} uint8": _image((2160 // scale, 3840 // scale), np.uint8, rng),
    }
    table(images, (8, 16, 64) if scale > 1 else (8, 16, 64, 256), policy, rng)
    memory_table(seed=0)


if __name__ == "__main__":
    main()
