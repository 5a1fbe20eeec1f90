"""Learning kernels at image scale: ``python -m bench.learning [--quick]``.

Two tables, timed in interleaved rounds in one process (:func:`bench.timing.median_ms`), the machine header first:

- **the notebook's experiment** on one large image: a k x k kernel (padding k // 2) learnt by gradient descent,
  one step = forward, squared-error loss, backward, as in the tutorial; ``xcorr.conv2d`` beside
  ``torch.nn.functional.conv2d`` (the weight gradient is the product that used to be slow);
- **``fit_kernel``**: the closed-form least-squares fit of a k x k kernel and a bias to a filtered, noisy copy of
  the image, in multiples of one ``filter2d`` pass of the same kernel over the same image, with the largest
  error of the kernel's taps and the bias.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

import xcorr
from bench.machine import start_run
from bench.timing import Policy, median_ms


def _notebook_step(conv: Callable[..., torch.Tensor], x: torch.Tensor, w: torch.Tensor) -> None:
    """One step of the tutorial's loop: forward, squared error against the input, backward."""
    y = conv(x, w, padding=w.shape[-1] // 2)
    ((y - x) ** 2).sum().backward()
    w.grad = None


def notebook_table(side: int, sizes: tuple[int, ...], policy: Policy, rng: np.random.Generator) -> None:
    x = torch.from_numpy(rng.random((1, 1, side, side), dtype=np.float32))
    print(f"\n| notebook step, {side}x{side} | xcorr ms | torch ms | xcorr / torch |")
    print("|---|---|---|---|")
    for k in sizes:
        w = torch.from_numpy(rng.standard_normal((1, 1, k, k), dtype=np.float32)).requires_grad_()
        calls = {
            name: partial(_notebook_step, conv, x, w) for name, conv in (("xcorr", xcorr.conv2d), ("torch", F.conv2d))
        }
        ms = median_ms(calls, policy)
        print(
            f"| {k}x{k} forward + backward | {ms['xcorr']:.3g} | {ms['torch']:.3g} | {ms['xcorr'] / ms['torch']:.2f} |"
        )


def fit_table(side: int, sizes: tuple[int, ...], policy: Policy, rng: np.random.Generator) -> None:
    x = rng.random((side, side), dtype=np.float32)
    print(f"\n| fit_kernel, {side}x{side}, bias, noise 1e-3 | fit ms | filter2d ms | fit / filter2d | kernel error |")
    print("|---|---|---|---|---|")
    for k in sizes:
        kernel = rng.standard_normal((k, k)).astype(np.float32)
        y = xcorr.filter2d(x, kernel, mode="valid") + 0.5
        y = y + 1e-3 * rng.standard_normal(y.shape).astype(np.float32)
        fit = partial(xcorr.fit_kernel, x, y, k, bias=True)
        ms = median_ms({"fit": fit, "filter": partial(xcorr.filter2d, x, kernel)}, policy)
        found = fit()
        error = max(float(np.abs(found.kernel - kernel).max()), abs(found.bias - 0.5))
        print(
            f"| {k}x{k} + bias | {ms['fit']:.3g} | {ms['filter']:.3g} | {ms['fit'] / ms['filter']:.1f} | {error:.1e} |"
        )


def main(argv: list[str] | None = None) -> None:
    rng, policy, scale = start_run("python -m bench.learning", __doc__.splitlines()[0], argv)
    side = 1024 // scale
    notebook_table(side, (3, 7, 15), policy, rng)
    fit_table(side, (7, 15), policy, rng)


if __name__ == "__main__":
    main()
