"""``xcorr fit``: recover the kernel that turns a BEFORE image into an AFTER image (the notebook's experiment)."""

from __future__ import annotations

import re
from dataclasses import dataclass
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
from xcorr.cli.kernel_spec import KERNEL_FILE_SUFFIXES
from xcorr.cli.safe_write import atomic_output, check_target
from xcorr.fit import ANCHORS, candidate_anchors

EXAMPLES = """\
Examples:

  xcorr fit photo.png photo_sharpened.png --size 3x3

  xcorr fit before.tif after.tif --size 5x5 --bias --save kernel.npy --plot fit.png

  xcorr fit x.npy y.npy --size 1x2 --method gd --steps 200

AFTER may have BEFORE's size (a filter applied in 'same' mode: only the pixels whose window lies inside BEFORE \
are fitted) or the 'valid' size (H-h+1)x(W-w+1). For a 'same' AFTER and an even --size, which tap sits on the \
output pixel differs between tools: --anchor auto (default) tries SciPy's signal.correlate2d / xcorr anchor \
((h-1)//2, (w-1)//2) and the centre (h//2, w//2) of scipy.ndimage and OpenCV, keeps the better fit and reports \
it. Integer images are scaled to 0..1 (their full scale), so the \
kernel is unit-free and the bias is in units of full scale. Colour planes are fitted together (one kernel); \
alpha is ignored. AFTER must not be clipped: fit on float TIFF/.npy results when the filter has negative parts.
"""

_SIZE = re.compile(r"^\s*(\d+)\s*(?:[x,]\s*(\d+))?\s*$")


_ANCHOR = re.compile(r"^\s*(\d+)\s*,\s*(\d+)\s*$")


@dataclass(frozen=True)
class AlignedPair:
    """BEFORE (..., H, W) and AFTER, (..., H, W) ('same') or (..., H-h+1, W-w+1) ('valid'), float64, full scale 1."""

    before: np.ndarray
    after: np.ndarray
    alignment: str

    def valid_after(self, kernel_size: tuple[int, int], anchor: tuple[int, int] | None) -> np.ndarray:
        """AFTER cropped to the pixels whose window lies inside BEFORE, for the fitted ``anchor``."""
        if anchor is None:
            return self.after
        (h, w), (height, width) = kernel_size, self.before.shape[-2:]
        return self.after[..., anchor[0] : anchor[0] + height - h + 1, anchor[1] : anchor[1] + width - w + 1]


def parse_anchor(text: str, kernel_size: tuple[int, int]) -> str | tuple[int, int]:
    """``"auto"``, ``"scipy"``, ``"center"`` or ``"R,C"`` -> what :func:`xcorr.fit_kernel` takes as ``anchor``.

    Raises:
        UsageError: none of those, or a tap outside the kernel.
    """
    if text in ANCHORS:
        return text
    match = _ANCHOR.match(text)
    if not match:
        raise UsageError(f"--anchor {text!r}: expected auto, scipy, center or ROW,COL (such as 1,1)")
    anchor = int(match[1]), int(match[2])
    try:
        candidate_anchors(anchor, kernel_size)
    except ValueError as exc:
        raise UsageError(f"--anchor {text!r}: {exc}") from None
    return anchor


def parse_size(text: str) -> tuple[int, int]:
    """``"3x5"`` -> (3, 5); ``"3"`` -> (3, 3).

    Raises:
        UsageError: not one or two positive integers.
    """
    match = _SIZE.match(text)
    if not match or int(match[1]) < 1 or (match[2] is not None and int(match[2]) < 1):
        raise UsageError(f"--size {text!r}: expected HxW with positive integers, such as 3x3 or 1x2")
    height = int(match[1])
    return height, int(match[2]) if match[2] is not None else height


def _unit_planes(picture: Picture) -> np.ndarray:
    return picture.planes.astype(np.float64) / full_scale(picture.planes.dtype)


def align_pair(before: Picture, after: Picture, size: tuple[int, int], names: tuple[str, str]) -> AlignedPair:
    """Check that AFTER can come from BEFORE through a ``size`` kernel and crop it to the 'valid' region.

    Raises:
        InputError: the kernel is larger than BEFORE, the colour planes differ, or AFTER's shape matches
            neither BEFORE's ('same') nor the 'valid' shape.
    """
    x, y = _unit_planes(before), _unit_planes(after)
    (h, w), (height, width) = size, x.shape[-2:]
    if h > height or w > width:
        raise InputError(
            f"--size {h}x{w} is larger than BEFORE {names[0]} (H, W) = {(height, width)}; use a smaller --size"
        )
    if x.shape[:-2] != y.shape[:-2]:
        raise InputError(
            f"BEFORE {names[0]} has planes {x.shape[:-2]} but AFTER {names[1]} has {y.shape[:-2]}; "
            "both must be grey or both colour"
        )
    valid = (height - h + 1, width - w + 1)
    if y.shape[-2:] == valid:
        return AlignedPair(x, y, "valid")
    if y.shape[-2:] == (height, width):
        return AlignedPair(x, y, "same")
    raise InputError(
        f"AFTER {names[1]} has (H, W) = {y.shape[-2:]}, but with --size {h}x{w} it must be BEFORE's "
        f"{(height, width)} ('same') or {valid} ('valid')"
    )


def _kernel_table(kernel: np.ndarray, bias: float | None) -> Table:
    table = Table(
        title="fitted kernel (correlation: y = sum(window * kernel)" + (" + bias)" if bias is not None else ")")
    )
    table.add_column("")
    for j in range(kernel.shape[1]):
        table.add_column(str(j), justify="right")
    for i, row in enumerate(kernel):
        table.add_row(str(i), *(f"{v:.6g}" for v in row))
    return table


def _safe_step(x: np.ndarray, taps: int, bias: bool) -> float:
    """``1 / trace(AᵀA)``: a gradient step on the summed squared error that can never diverge."""
    trace = taps * float(np.sum(x**2)) + (x.size if bias else 0.0)
    return 1.0 / max(trace, 1e-300)


def _save_kernel(kernel: np.ndarray, path: Path) -> None:
    with atomic_output(path) as staged:
        if path.suffix.lower() == ".npy":
            with staged.open("wb") as f:
                np.save(f, kernel, allow_pickle=False)
        else:
            np.savetxt(staged, kernel, delimiter="," if path.suffix.lower() == ".csv" else " ", fmt="%.17g")


def fit_command(
    before: Annotated[Path, typer.Argument(help="The image before filtering.", show_default=False)],
    after: Annotated[Path, typer.Argument(help="The same image after the unknown filter.", show_default=False)],
    size: Annotated[str, typer.Option("--size", help="Kernel size HxW (or N for NxN).", show_default=False)],
    bias: Annotated[bool, typer.Option("--bias", help="Also fit a constant offset.")] = False,
    anchor: Annotated[
        str, typer.Option(help="'same'-size AFTER: the kernel tap on the output pixel: auto, scipy, center or R,C.")
    ] = "auto",
    method: Annotated[
        Literal["lstsq", "gd"], typer.Option(help="Closed-form least squares, or gradient descent.")
    ] = "lstsq",
    ridge: Annotated[float, typer.Option(min=0.0, help="lstsq: ridge penalty on the kernel's squared norm.")] = 0.0,
    lr: Annotated[
        float | None, typer.Option(min=0.0, help="gd: step size.", show_default="1/trace(AᵀA), which cannot diverge")
    ] = None,
    steps: Annotated[int, typer.Option(min=1, help="gd: number of updates.")] = 100,
    save: Annotated[Path | None, typer.Option(help="Save the kernel (.npy, .txt or .csv).")] = None,
    plot: Annotated[Path | None, typer.Option(help="Save a picture: kernel, before, after, residual (.png).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing --save/--plot files.")] = False,
    max_pixels: Annotated[int, typer.Option(min=1, help="Refuse larger images.")] = DEFAULT_MAX_PIXELS,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Print nothing but errors (and --json).")] = False,
) -> None:
    """Recover the kernel (and bias) that turns BEFORE into AFTER; print it with the fit residual."""
    kernel_size = parse_size(size)
    fit_anchor = parse_anchor(anchor, kernel_size)
    if save is not None and save.suffix.lower() not in KERNEL_FILE_SUFFIXES:
        raise UsageError(f"--save {save}: use a .npy, .txt or .csv file name")
    for target in (t for t in (save, plot) if t is not None):
        check_target(target, inputs=[before, after], force=force)
    pair = align_pair(
        read_picture(before, max_pixels=max_pixels),
        read_picture(after, max_pixels=max_pixels),
        kernel_size,
        (str(before), str(after)),
    )
    taps = kernel_size[0] * kernel_size[1]
    with console.progress_bar(enabled=method == "gd" and not quiet and not as_json) as progress:
        task = progress.add_task("gradient descent", total=steps, status="")
        every = max(steps // 10, 1)

        def report(step: int, loss: float) -> None:
            progress.update(task, completed=step, status=f"loss {loss:.6g}")
            if step % every == 0:
                console.note(f"epoch {step} loss: {loss}", quiet=quiet or as_json)

        result = xcorr.fit_kernel(
            pair.before,
            pair.after,
            kernel_size,
            bias=bias,
            anchor=fit_anchor,
            method=method,
            ridge=ridge,
            lr=lr if lr is not None else _safe_step(pair.before, taps, bias),
            steps=steps,
            callback=report if method == "gd" else None,
        )
    kernel = np.asarray(result.kernel, dtype=np.float64)
    fitted_after = pair.valid_after(kernel_size, result.anchor)
    residual = fitted_after - (xcorr.filter2d(pair.before, kernel, mode="valid") + result.bias)
    rms = float(np.sqrt(np.mean(residual**2)))
    scale = float(np.sqrt(np.mean(fitted_after**2)))
    alignment = f"{pair.alignment} alignment" + (
        f", anchor {result.anchor[0]},{result.anchor[1]}" if result.anchor else ""
    )
    if save is not None:
        _save_kernel(kernel, save)
    if plot is not None:
        plots.save_fit_figure(plot, kernel, pair.before, fitted_after, residual)
    if as_json:
        summary = {
            "kernel": kernel.tolist(),
            "bias": result.bias,
            "loss": result.loss,
            "rms_residual": rms,
            "alignment": pair.alignment,
            "anchor": list(result.anchor) if result.anchor else None,
            "method": method,
        }
        console.emit_json(summary)
    elif not quiet:
        console.stdout.print(_kernel_table(kernel, result.bias if bias else None))
        if bias:
            console.stdout.print(f"bias: {result.bias:.6g} (full scale = 1)")
        relative = f" = {rms / scale:.3%} of AFTER's RMS" if scale > 0 else ""
        console.stdout.print(
            f"residual RMS: {rms:.6g}{relative} over {residual.size} samples ({alignment}), "
            f"loss (sum of squares): {result.loss:.6g}"
        )
    for target in (t for t in (save, plot) if t is not None):
        console.note(f"wrote {target}", quiet=quiet or as_json)
