"""``xcorr demo``: the seed notebook reproduced through xcorr, optionally with pictures of every step."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import typer

from xcorr import kernels
from xcorr.cli import console, plots
from xcorr.cli.errors import InputError
from xcorr.demo import DemoResult
from xcorr.demo import run as run_demo

EXAMPLES = """\
Examples:

  xcorr demo

  xcorr demo --out docs/demo
"""

PICTURES = ("input.png", "kernels.png", "edges.png", "loss.png")


def demo_command(
    out: Annotated[
        Path | None, typer.Option(help=f"Also write pictures here: {', '.join(PICTURES)}.", show_default=False)
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing pictures.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Do not print the notebook's cells.")] = False,
) -> None:
    """Run every cell of the seed notebook through xcorr, print what it printed, fit the edge kernel."""
    if out is not None:
        plots.pyplot()
        out.mkdir(parents=True, exist_ok=True)
        existing = [out / name for name in PICTURES if (out / name).exists()]
        if existing and not force:
            raise InputError(f"{existing[0]}: already exists; pass --force to overwrite the demo pictures")
    result = run_demo(echo=(lambda _: None) if quiet else lambda text: console.stdout.print(text, markup=False))
    if out is not None:
        _save_pictures(result, out)
        console.note(f"wrote {', '.join(str(out / name) for name in PICTURES)}", quiet=quiet)


def _save_pictures(result: DemoResult, out: Path) -> None:
    def array(tensor: torch.Tensor) -> np.ndarray:
        return tensor.detach().cpu().numpy()

    plots.save_image_grid(
        out / "input.png", {"x: dark band": array(result.image), "x: triangle": array(result.triangle)}, signed=False
    )
    plots.save_kernels(
        out / "kernels.png",
        {
            "edge [[-1, 1]]": kernels.edge(),
            "learned (10 gd steps)": array(result.learned_kernel),
            "fitted (lstsq)": array(result.fitted_kernel),
        },
    )
    plots.save_image_grid(
        out / "edges.png",
        {
            "corr2d(band, edge)": array(result.edges),
            "learned layer(band)": array(result.learned_edges),
            "corr2d(triangle, edge)": array(result.triangle_edges),
            "corr2d(triangle.T, edge)": array(result.transposed_edges),
            "corr2d(triangle, edge.T)": array(result.vertical_edges),
        },
        signed=True,
    )
    plots.save_loss_curve(out / "loss.png", result.losses, "learning the edge kernel: the notebook's loop")
