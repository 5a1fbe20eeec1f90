"""Real models through ``xcorr.convert``: ``python -m bench.models [--quick]``.

Five timm architectures with random weights (no download): resnet18, mobilenetv2_100, efficientnet_b0 at batch 8,
convnext_tiny and convnext_tiny with 31x31 depthwise kernels (``kernel_sizes=31``) at batch 4, 224x224 float32.
Each model is built once and deep-copied; the copy goes through ``xcorr.convert``. Two calls per model, timed in
interleaved rounds in one process (:func:`bench.timing.median_ms`):

- **inference**: ``eval()`` mode under ``torch.inference_mode()``;
- **training step**: ``train()`` mode, forward, a cross-entropy loss, backward and an SGD step (the weights change
  every step, as in training).

Prints the machine header, then the median time of each and the converted model's time over torch's. The first
call of each converted model plans (and measures) every new layer shape; it is the warm-up, not timed.

timm needs torchvision's Python part only: ``pip install --no-deps timm torchvision==0.28.0`` (``make bench``
does it). torchvision's compiled ops do not load against the pinned CPU torch, so the two operator schemas timm's
import touches (``torchvision::nms`` and ``torchvision::qnms``) are defined here before importing it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import partial

import numpy as np
import torch

import xcorr
from bench.machine import start_run
from bench.timing import Policy, median_ms

MODELS: tuple[tuple[str, str, dict[str, object], int], ...] = (
    ("resnet18", "resnet18", {}, 8),
    ("mobilenetv2_100", "mobilenetv2_100", {}, 8),
    ("efficientnet_b0", "efficientnet_b0", {}, 8),
    ("convnext_tiny", "convnext_tiny", {}, 4),
    ("convnext_tiny, kernel_sizes=31", "convnext_tiny", {"kernel_sizes": 31}, 4),
)
"""(label, timm name, timm arguments, batch)."""


_TORCHVISION_SCHEMAS: list[torch.library.Library] = []
"""The library defining the two schemas, kept alive (the definitions go with it)."""


def import_timm() -> object:
    """``timm``, imported without torchvision's compiled ops (see the module docstring)."""
    if not hasattr(torch.ops.torchvision, "nms"):
        library = torch.library.Library("torchvision", "DEF")
        library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        library.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _TORCHVISION_SCHEMAS.append(library)
    import timm

    return timm


def _inference(model: torch.nn.Module, x: torch.Tensor) -> None:
    with torch.inference_mode():
        model(x)


def _training_step(model: torch.nn.Module, optimiser: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    optimiser.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimiser.step()


def _pair(build: Callable[[], torch.nn.Module]) -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    theirs = build()
    return {"torch": theirs, "xcorr": xcorr.convert(copy.deepcopy(theirs))}


def model_table(side: int, policy: Policy, rng: np.random.Generator) -> None:
    timm = import_timm()
    print(f"\n| model ({side}x{side}) | batch | mode | xcorr ms | torch ms | xcorr / torch |")
    print("|---|---|---|---|---|---|")
    for label, name, arguments, batch in MODELS:
        models = _pair(partial(timm.create_model, name, pretrained=False, **arguments))  # type: ignore[attr-defined]
        x = torch.from_numpy(rng.standard_normal((batch, 3, side, side), dtype=np.float32))
        y = torch.from_numpy(rng.integers(0, 1000, batch))
        for model in models.values():
            model.eval()
        ms = median_ms({kind: partial(_inference, model, x) for kind, model in models.items()}, policy)
        _row(label, batch, "inference", ms)
        steps = {}
        for kind, model in models.items():
            model.train()
            steps[kind] = partial(_training_step, model, torch.optim.SGD(model.parameters(), lr=1e-4), x, y)
        ms = median_ms(steps, policy)
        _row(label, batch, "training step", ms)


def _row(label: str, batch: int, mode: str, ms: dict[str, float]) -> None:
    ratio = ms["xcorr"] / ms["torch"]
    print(f"| {label} | {batch} | {mode} | {ms['xcorr']:.1f} | {ms['torch']:.1f} | {ratio:.2f} |")


def main(argv: list[str] | None = None) -> None:
    rng, policy, scale = start_run("python -m bench.models", __doc__.splitlines()[0], argv)
    model_table(224 // scale if scale == 1 else 64, policy, rng)


if __name__ == "__main__":
    main()
