"""``xcorr filter``: correlate image files with a kernel and write the results, safely, with a progress bar."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import typer

import xcorr
from xcorr.cli import console
from xcorr.cli.depth import convert_samples
from xcorr.cli.errors import CliError, InputError, UsageError
from xcorr.cli.grid import Boundary, follow_output_grid
from xcorr.cli.images import (
    DEFAULT_MAX_PIXELS,
    FORMAT_BY_SUFFIX,
    Picture,
    check_storable,
    format_of,
    read_picture,
    write_picture,
)
from xcorr.cli.kernel_spec import KERNEL_HELP, parse_kernel
from xcorr.cli.safe_write import atomic_output, check_target
from xcorr.outputs import ZARR_SUFFIX

Mode = Literal["same", "valid", "full"]
OutputDtype = Literal["uint8", "uint16", "float32", "float64"]
Progress = Callable[[int, int], None]
"""``progress(done, total)`` in chunks, for the routes that work chunk by chunk."""

EXAMPLES = """\
Examples:

  xcorr filter photo.png -k sobel-x --abs -o edges.png

  xcorr filter scans/*.tif -k gaussian:7,1.5 --boundary reflect --out-dir smoothed/

  xcorr filter cells.tif -k "[[0,-1,0],[-1,4,-1],[0,-1,0]]" --dtype float32 -o cells_lap.tif

  xcorr filter slide.zarr -k gaussian:31 -o smooth.zarr

  xcorr filter huge.tif -k gaussian:31 -o smooth.zarr --chunk-size 2048

Results are computed in float64 on the raw samples (0-255, 0-65535, or the floats stored) and written in the \
input's dtype: rounded, then clipped to its range (the number of clipped samples is reported). --abs takes \
absolute values first (edge maps); --normalize maps the result's min..max onto the full range instead of \
clipping; --dtype float32 (TIFF, .npy) keeps every value. Colour channels are filtered one by one; alpha is kept.

Images larger than memory: a .zarr output (-o out.zarr) is written chunk by chunk from a Zarr array or a TIFF, \
never read whole (memory: a few chunks per core), with a progress bar. It holds the float result (float64 for \
float64 inputs, else float32); --chunk-size sets the chunk side (default: the input's, at least 1024). Needs \
xcorr[dask].

Exit codes: 0 all inputs written, 1 some inputs failed (the others were written), 2 usage error.
"""


@dataclass(frozen=True)
class FilterSettings:
    """Everything one input needs besides its paths."""

    kernel: np.ndarray
    mode: Mode
    boundary: Boundary
    cval: float
    algo: str
    normalize: bool
    absolute: bool
    dtype: np.dtype | None
    max_pixels: int
    force: bool
    chunk_size: int | None = None


@dataclass(frozen=True)
class FileReport:
    """One line of the outcome (``--json`` prints a list of these)."""

    input: str
    output: str | None
    ok: bool
    detail: str
    clipped: int = 0
    seconds: float = 0.0


def filter_picture(picture: Picture, settings: FilterSettings) -> tuple[Picture, int]:
    """Filter every colour plane of ``picture``, carry alpha along, convert to the output dtype.

    Returns the new picture and how many samples were clipped to the output dtype's range.

    Raises:
        InputError: the kernel does not fit the image in "valid" mode (or another shape problem).
    """
    source_dtype = picture.planes.dtype
    target_dtype = settings.dtype or source_dtype
    try:
        values = xcorr.filter2d(
            picture.planes,
            settings.kernel,
            dtype=np.float64,  # computed in float64 straight from the file's samples, rounded and clipped below
            mode=settings.mode,
            boundary=settings.boundary,
            cval=settings.cval,
            algo=settings.algo,
        )
    except ValueError as exc:  # xcorr's argument errors name the shapes and the fix
        raise InputError(str(exc)) from None
    values = np.abs(values) if settings.absolute else np.asarray(values)
    converted = convert_samples(values, source_dtype, target_dtype, normalize=settings.normalize)
    alpha = None
    if picture.alpha is not None:
        moved = follow_output_grid(picture.alpha, settings.kernel.shape, settings.mode, settings.boundary)
        alpha = convert_samples(moved.astype(np.float64), source_dtype, target_dtype, normalize=False).samples
    filtered = Picture(converted.samples, alpha, picture.samples_axis, picture.format, picture.info)
    return filtered, converted.clipped


def _filter_image_file(source: Path, target: Path, settings: FilterSettings, progress: Progress) -> FileReport:
    picture = read_picture(source, max_pixels=settings.max_pixels)
    try:
        filtered, clipped = filter_picture(picture, settings)
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from None
    check_storable(filtered, target, format_of(target))
    with atomic_output(target) as staged:
        write_picture(filtered, staged, format_of(target))
    detail = f"{picture.description} -> {filtered.description}"
    if clipped:
        detail += f", {clipped} of {filtered.planes.size} samples clipped to the {filtered.planes.dtype} range"
    return FileReport(str(source), str(target), True, detail, clipped)


def _filter_to_zarr_store(source: Path, target: Path, settings: FilterSettings, progress: Progress) -> FileReport:
    """Out-of-core filtering of a Zarr array or TIFF into a Zarr array, by :mod:`xcorr.dask` (the ``dask`` extra)."""
    try:
        from xcorr.dask import filter_to_zarr, open_array
    except ImportError:
        raise InputError(f"{source}: .zarr outputs need xcorr's dask support: pip install 'xcorr[dask]'") from None
    if source.suffix.lower() not in OUT_OF_CORE_INPUTS:
        raise InputError(f"{source}: a .zarr output is written from a .zarr or TIFF input, not {source.suffix!r}")
    if target.suffix.lower() != ZARR_SUFFIX:
        raise InputError(f"{target}: a .zarr input is written to a .zarr output")
    if settings.normalize or settings.absolute or settings.dtype is not None:
        raise InputError(f"{source}: --normalize, --abs and --dtype apply to image outputs, not .zarr stores")
    try:
        precision = np.float64 if open_array(source).dtype == np.float64 else np.float32
        with atomic_output(target) as staged:
            written = filter_to_zarr(
                source,
                staged,
                settings.kernel.astype(precision),  # float32 data gives a float32 store, not a float64 one
                mode=settings.mode,
                boundary=settings.boundary,
                cval=settings.cval,
                algo=settings.algo,
                chunks=settings.chunk_size,
                progress=progress,
            )
    except ValueError as exc:  # not a Zarr array, or the kernel does not fit in "valid" mode
        raise InputError(f"{source}: {exc}") from None
    shape = "x".join(map(str, written.shape))
    return FileReport(str(source), str(target), True, f"{shape} {written.dtype}, {written.nchunks} chunks")


FileFilter = Callable[[Path, Path, FilterSettings, Progress], FileReport]

OUT_OF_CORE_INPUTS = (ZARR_SUFFIX, ".tif", ".tiff")


def _route(source: Path, target: Path) -> FileFilter:
    """A .zarr input or output goes chunk by chunk through :mod:`xcorr.dask`; the rest is filtered in memory."""
    zarr_involved = ZARR_SUFFIX in (source.suffix.lower(), target.suffix.lower())
    return _filter_to_zarr_store if zarr_involved else _filter_image_file


def _targets(inputs: Sequence[Path], output: Path | None, out_dir: Path | None) -> list[Path]:
    if output is not None and out_dir is None:
        if len(inputs) != 1:
            raise UsageError(f"-o/--output takes one input, got {len(inputs)}; use --out-dir for several")
        if output.suffix.lower() not in FORMAT_BY_SUFFIX and output.suffix.lower() != ZARR_SUFFIX:
            known = ", ".join(sorted([*FORMAT_BY_SUFFIX, ZARR_SUFFIX]))
            raise UsageError(f"-o {output}: unsupported output format {output.suffix or '(none)'!r}; use {known}")
        return [output]
    if out_dir is None or output is not None:
        raise UsageError("give exactly one of -o/--output (one input) or --out-dir (any number of inputs)")
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out-dir {out_dir} is not a directory")
    targets = [out_dir / source.name for source in inputs]
    clashes = sorted({t.name for t in targets if targets.count(t) > 1})
    if clashes:
        raise UsageError(f"several inputs would be written to the same file in {out_dir}: {', '.join(clashes)}")
    return targets


def filter_command(
    inputs: Annotated[
        list[Path], typer.Argument(help="Image files: PNG, JPEG, TIFF or .npy; or .zarr arrays.", show_default=False)
    ],
    kernel: Annotated[str, typer.Option("-k", "--kernel", help=f"The kernel: {KERNEL_HELP}.", show_default=False)],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Output file (one input); its suffix picks the format.")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out-dir", help="Directory for the outputs (same names as the inputs); created.")
    ] = None,
    mode: Annotated[Mode, typer.Option(help="Output size, as scipy.signal.correlate2d.")] = "same",
    boundary: Annotated[Boundary, typer.Option(help="How the image extends past its edge (numpy.pad's names).")] = (
        "constant"
    ),
    cval: Annotated[float, typer.Option(help="Value outside the image for --boundary constant.")] = 0.0,
    algo: Annotated[str, typer.Option(help="auto, or an algorithm from xcorr.algorithms() (see xcorr plan).")] = "auto",
    normalize: Annotated[
        bool, typer.Option("--normalize", help="Map the result's min..max onto the full range instead of clipping.")
    ] = False,
    absolute: Annotated[bool, typer.Option("--abs", help="Absolute value of the result (edge magnitudes).")] = False,
    dtype: Annotated[OutputDtype | None, typer.Option(help="Output sample type.", show_default="the input's")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing outputs (never an input).")] = False,
    max_pixels: Annotated[
        int, typer.Option(min=1, help="Refuse larger images (Pillow's decompression-bomb limit).")
    ] = DEFAULT_MAX_PIXELS,
    chunk_size: Annotated[
        int | None,
        typer.Option(min=1, help="Chunk side in pixels for .zarr outputs.", show_default="the input's, >= 1024"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON report per input on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Print errors only.")] = False,
) -> None:
    """Correlate image files with a kernel; colour channels one by one, alpha kept, bit depth kept."""
    targets = _targets(inputs, output, out_dir)
    if algo != "auto" and algo not in xcorr.algorithms():
        raise UsageError(f"--algo {algo!r} is unknown; use auto or one of {', '.join(xcorr.algorithms())}")
    settings = FilterSettings(
        kernel=parse_kernel(kernel),
        mode=mode,
        boundary=boundary,
        cval=cval,
        algo=algo,
        normalize=normalize,
        absolute=absolute,
        dtype=np.dtype(dtype) if dtype else None,
        max_pixels=max_pixels,
        force=force,
        chunk_size=chunk_size,
    )
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    reports = []
    with console.progress_bar(enabled=not quiet and not as_json) as progress:
        files = progress.add_task("filtering", total=len(inputs), status="", visible=len(inputs) > 1)
        chunks = progress.add_task("chunks", total=None, status="", visible=False)

        def chunk_done(done: int, total: int) -> None:
            progress.update(chunks, completed=done, total=total, visible=True)

        for source, target in zip(inputs, targets, strict=True):
            progress.update(files, status=source.name)
            progress.update(chunks, status=source.name)
            reports.append(_filter_one(source, target, settings, inputs, chunk_done, quiet=quiet or as_json))
            progress.update(chunks, completed=0, visible=False)
            progress.advance(files)
    failed = [r for r in reports if not r.ok]
    if as_json:
        console.emit_json([asdict(r) for r in reports])
    elif len(reports) > 1:
        console.note(
            f"filtered {len(reports) - len(failed)} of {len(reports)} files; {len(failed)} failed", quiet=quiet
        )
    if failed:
        raise typer.Exit(InputError.exit_code)


def _filter_one(
    source: Path, target: Path, settings: FilterSettings, inputs: Sequence[Path], progress: Progress, *, quiet: bool
) -> FileReport:
    started = time.perf_counter()
    try:
        check_target(target, inputs=inputs, force=settings.force)
        report = _route(source, target)(source, target, settings, progress)
    except CliError as exc:
        console.error(str(exc))
        return FileReport(str(source), None, False, str(exc))
    report = FileReport(**{**asdict(report), "seconds": round(time.perf_counter() - started, 4)})
    console.note(f"{report.input} -> {report.output}: {report.detail}", quiet=quiet)
    return report
