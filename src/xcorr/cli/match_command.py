"""``xcorr match``: find templates in an image file and print (or save as JSON, or draw) the best placements."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import typer
from rich.table import Table

import xcorr
from xcorr.cli import console, plots
from xcorr.cli.depth import full_scale
from xcorr.cli.errors import InputError, UsageError
from xcorr.cli.images import DEFAULT_MAX_PIXELS, Picture, read_picture
from xcorr.cli.safe_write import check_target

EXAMPLES = """\
Examples:

  xcorr match scene.png logo.png

  xcorr match scene.tif part1.tif part2.tif --top 5 --min-distance 20 --json

  xcorr match scene.png logo.png --mask logo_mask.png --image-mask valid_area.png --plot matches.png

Positions are the template's top-left corner in the image (row, column), refined to a fraction of a pixel, as \
cv2.matchTemplate's locations. Colour images are matched over their channels together (the template must have \
the image's channels); alpha is ignored. --mask weighs the template's pixels (an image of the template's size); \
--image-mask marks the image pixels to ignore (zero) and use (nonzero). Templates of one size share one call.
"""

Method = Literal["sqdiff", "sqdiff_normed", "ccorr", "ccorr_normed", "ccoeff", "ccoeff_normed"]


def _planes(picture: Picture, path: Path, role: str) -> np.ndarray:
    """(H, W) or (C, H, W) samples of a single image; a stack is refused."""
    if picture.images != 1:
        raise InputError(f"{role} {path} is a stack of {picture.images} images; pass a single image")
    return picture.planes


def _grey(path: Path, role: str, shape: tuple[int, int], max_pixels: int) -> np.ndarray:
    """A mask file as (H, W) float64 weights of the given ``shape``."""
    planes = _planes(read_picture(path, max_pixels=max_pixels), path, role)
    weights = planes.astype(np.float64)
    weights = weights if weights.ndim == 2 else weights.mean(axis=0)
    if weights.shape != shape:
        raise InputError(f"{role} {path} is {weights.shape[1]}x{weights.shape[0]} but must be {shape[1]}x{shape[0]}")
    return weights


def _matches_table(rows: list[dict[str, object]]) -> Table:
    table = Table(title="best placements (top-left corner)")
    for column in ("template", "rank", "row", "column", "score"):
        table.add_column(column, justify="left" if column == "template" else "right")
    for row in rows:
        table.add_row(
            str(row["template"]), str(row["rank"]), f"{row['row']:.2f}", f"{row['column']:.2f}", f"{row['score']:.6g}"
        )
    return table


def match_command(
    image: Annotated[Path, typer.Argument(help="The image to search.", show_default=False)],
    templates: Annotated[list[Path], typer.Argument(help="One or more template images.", show_default=False)],
    method: Annotated[Method, typer.Option(help="OpenCV's score (TM_* in lower case).")] = "ccoeff_normed",
    mask: Annotated[Path | None, typer.Option(help="Template weights, an image of the templates' size.")] = None,
    image_mask: Annotated[Path | None, typer.Option(help="Image pixels to use (nonzero) or ignore (0).")] = None,
    top: Annotated[int, typer.Option(min=1, help="Placements reported per template, best first.")] = 1,
    min_distance: Annotated[
        int | None, typer.Option(min=0, help="Pixels between reported placements.", show_default="1")
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="Save a picture: image with boxes, score maps (.png).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --plot file.")] = False,
    max_pixels: Annotated[int, typer.Option(min=1, help="Refuse larger images.")] = DEFAULT_MAX_PIXELS,
    as_json: Annotated[bool, typer.Option("--json", help="Print the placements as JSON on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Print nothing but errors (and --json).")] = False,
) -> None:
    """Find each TEMPLATE in IMAGE and report its best placements and scores."""
    if plot is not None:
        plots.check_plot_path(plot)
        check_target(plot, inputs=[image, *templates], force=force)
    scene = _planes(read_picture(image, max_pixels=max_pixels), image, "image")
    cut = [_planes(read_picture(t, max_pixels=max_pixels), t, "template") for t in templates]
    for path, template in zip(templates, cut, strict=True):
        if template.ndim != scene.ndim or template.shape[:-2] != scene.shape[:-2]:
            raise InputError(
                f"template {path} has {template.shape[:-2] or 'no'} channels but image {image} has "
                f"{scene.shape[:-2] or 'none'}; convert one so both are grey or both colour"
            )
    sizes = {t.shape[-2:] for t in cut}
    if mask is not None and len(sizes) > 1:
        raise UsageError("--mask needs templates of one size; run one size at a time")
    weights = None if mask is None else _grey(mask, "--mask", next(iter(sizes)), max_pixels)
    ignore = None if image_mask is None else _grey(image_mask, "--image-mask", scene.shape[-2:], max_pixels)
    axis = 0 if scene.ndim == 3 else None
    rows: list[dict[str, object]] = []
    maps: dict[str, np.ndarray] = {}
    for size in sorted(sizes):
        members = [i for i, t in enumerate(cut) if t.shape[-2:] == size]
        stack = np.stack([cut[i] for i in members])
        try:
            scores = xcorr.match_template(
                scene, stack, method=method, mask=weights, image_mask=ignore, channel_axis=axis
            )
        except ValueError as exc:
            raise InputError(f"{image}: {exc}") from None
        found = xcorr.peaks(scores, count=top, min_distance=min_distance, smallest=method.startswith("sqdiff"))
        for which, row, col, score in found:
            name = str(templates[members[int(which)]])
            rank = 1 + sum(1 for r in rows if r["template"] == name)
            rows.append(
                {
                    "template": name,
                    "rank": rank,
                    "row": row,
                    "column": col,
                    "score": score,
                    "height": size[0],
                    "width": size[1],
                }
            )
        for k, i in enumerate(members):
            maps[str(templates[i])] = np.asarray(scores[k])
    if plot is not None:
        plots.save_matches(plot, scene / full_scale(scene.dtype), maps, rows)
    if as_json:
        console.emit_json({"image": str(image), "method": method, "matches": rows})
    elif not quiet:
        console.stdout.print(_matches_table(rows))
    if plot is not None:
        console.note(f"wrote {plot}", quiet=quiet or as_json)
