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
from xcorr.functional import filter2d
from xcorr.matching import match_template
from xcorr.peaks import peaks

EXAMPLES = """\
Examples:

  xcorr demo

  xcorr demo --out docs/demo
"""

PICTURES = ("input.png", "kernels.png", "edges.png", "loss.png", "matches.png")

MATCH_CORNERS = ((40, 60), (110, 170))
"""Where the template-matching picture's two 24x32 templates are cut from its seeded scene (top-left corners)."""


def demo_command(
    out: Annotated[
        Path | None, typer.Option(help=f"Also write pictures here: {', '.join(PICTURES)}.", show_default=False)
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing pictures.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Do not print the notebook's cells.")] = False,
) -> None:
    """Run every cell of the seed notebook through xcorr, print what it printed, fit the edge kernel; with
    ``--out``, pictures of every step and of template matching on a seeded scene."""
    if out is not None:
        plots.pyplot()
        out.mkdir(parents=True, exist_ok=True)
        existing = [out / name for name in PICTURES if (out / name).exists()]
        if existing and not force:
            raise InputError(f"{existing[0]}: already exists; pass --force to overwrite the demo pictures")
    result = run_demo(echo=(lambda _: None) if quiet else lambda text: console.stdout.print(text, markup=False))
    if out is not None:
        _save_pictures(result, out)
        for line in _save_matches(out / "matches.png"):
            console.note(line, quiet=quiet)
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


def _save_matches(path: Path) -> list[str]:
    """Template matching on a seeded scene (smoothed noise): two templates cut from it at :data:`MATCH_CORNERS`
    found again (``match_template`` + ``peaks``), drawn as boxes beside their score maps. Returns one line per
    template saying where it was found."""
    scene = filter2d(np.random.default_rng(0).random((180, 240), dtype=np.float32), kernels.gaussian(9, 2.0))
    templates = np.stack([scene[r : r + 24, c : c + 32] for r, c in MATCH_CORNERS])
    scores = np.asarray(match_template(scene, templates))
    found = peaks(scores, subpixel=False)
    rows = [
        {"row": int(row), "column": int(column), "height": 24, "width": 32, "rank": int(index) + 1}
        for index, row, column, _ in found
    ]
    plots.save_matches(path, scene, {f"template {i + 1}": scores[i] for i in range(len(templates))}, rows)
    return [
        f"template {r['rank']} (cut at {corner}) found at ({r['row']}, {r['column']}), score {score:.3f}"
        for r, corner, score in zip(rows, MATCH_CORNERS, found[:, 3], strict=True)
    ]
