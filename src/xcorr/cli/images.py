"""Image files <-> sample planes: PNG, JPEG, TIFF (8/16-bit integer or float) and ``.npy``.

A file is decoded into a :class:`Picture`: the planes to filter, shaped (..., H, W), and the alpha plane kept
apart. Colour images (H, W, S) become planes (S', H, W) (alpha removed) and go back to (H, W, S) on writing, so a
file written from an unchanged picture holds exactly the samples that were read. Codecs: PNG with imagecodecs
(libpng: 8 and 16 bits, grey, grey+alpha, RGB, RGBA, palette expanded to RGB(A)), JPEG with Pillow, TIFF with
tifffile (any integer or float dtype, ``YX``, ``YXS``, ``SYX`` and stacks such as ``ZYX``), NumPy ``.npy``
(an (H, W) or (..., H, W) array, no colour axis).

Nothing is dropped: every page of a TIFF is read (pages written one at a time, as separate series, become one
stack; pages of different sizes or types are refused, naming them), a stack is refused by the formats that hold one
image, and orientation, colour profile and resolution travel with the picture (:mod:`xcorr.cli.metadata`).

Every failure to decode is raised as :class:`~xcorr.cli.errors.InputError` with one line naming the file.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import imagecodecs
import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError

from xcorr.cli.errors import InputError
from xcorr.cli.metadata import PNG_SIGNATURE, ImageInfo, png_info, split_orientation, upright, with_png_info

FORMAT_BY_SUFFIX = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".tif": "tiff", ".tiff": "tiff", ".npy": "npy"}
"""File name suffix (lower case) -> format family."""

STORABLE_DTYPES: dict[str, tuple[np.dtype, ...] | None] = {
    "png": (np.dtype(np.uint8), np.dtype(np.uint16)),
    "jpeg": (np.dtype(np.uint8),),
    "tiff": None,  # any integer or float dtype
    "npy": None,
}
"""Sample dtypes each format can store (``None``: every numeric dtype)."""

DEFAULT_MAX_PIXELS: int = Image.MAX_IMAGE_PIXELS or 89_478_485
"""Pillow's decompression-bomb limit (pixels per image plane); larger images are refused unless raised."""

JPEG_QUALITY = 95
"""JPEG is lossy: written at this quality with 4:4:4 chroma (no subsampling)."""

_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, RuntimeError, struct.error, zlib.error, MemoryError)
_TIFF_ALPHA = (1, 2)  # EXTRASAMPLE.ASSOCALPHA, EXTRASAMPLE.UNASSALPHA


@dataclass(frozen=True)
class Picture:
    """Decoded samples of one image file.

    ``planes`` (..., H, W) are what gets filtered, in the file's dtype, already turned upright; ``alpha``
    (..., H, W) or ``None`` is the alpha channel, never filtered; ``samples_axis`` says the file stores samples
    interleaved last (H, W, S), so planes go back to that axis on writing. ``format`` is the family the file was
    read as; ``info`` its colour profile, resolution and EXIF, written to the output where its format allows.

    Example:
        >>> pic = Picture(np.zeros((3, 4, 5), np.uint8), None, samples_axis=True, format="png")
        >>> pic.interleaved().shape
        (4, 5, 3)
    """

    planes: np.ndarray
    alpha: np.ndarray | None
    samples_axis: bool
    format: str
    info: ImageInfo = field(default_factory=ImageInfo)

    @property
    def images(self) -> int:
        """How many 2-D images (pages of a stack) the picture holds; 1 for a single grey or colour image."""
        lead = self.planes.shape[: -3 if self.samples_axis else -2]
        return int(np.prod(lead))

    @property
    def description(self) -> str:
        """Short human description: ``512x768 RGBA uint16``."""
        height, width = self.planes.shape[-2:]
        colours = {1: "grey", 3: "RGB"}.get(self.planes.shape[-3], "planes") if self.samples_axis else "grey"
        lead = self.planes.shape[: -3 if self.samples_axis else -2]
        stack = "x".join(map(str, lead)) + " stack of " if lead else ""
        alpha = "+alpha" if self.alpha is not None else ""
        return f"{stack}{width}x{height} {colours}{alpha} {self.planes.dtype}"

    def interleaved(self) -> np.ndarray:
        """Samples in file order, C-contiguous: (..., H, W) or (..., H, W, S) with alpha last."""
        if not self.samples_axis:
            return np.ascontiguousarray(self.planes)
        channels = [np.moveaxis(self.planes, -3, -1)]
        if self.alpha is not None:
            channels.append(self.alpha[..., None].astype(self.planes.dtype))
        return np.ascontiguousarray(np.concatenate(channels, axis=-1))


def format_of(path: Path) -> str:
    """Format family from the file name: ``"png"``, ``"jpeg"``, ``"tiff"`` or ``"npy"``.

    Example:
        >>> format_of(Path("scan_0001.TIF"))
        'tiff'

    Raises:
        InputError: the suffix is not one of :data:`FORMAT_BY_SUFFIX`.
    """
    try:
        return FORMAT_BY_SUFFIX[path.suffix.lower()]
    except KeyError:
        known = ", ".join(sorted(FORMAT_BY_SUFFIX))
        raise InputError(f"{path}: unsupported format {path.suffix or '(no suffix)'!r}; use one of {known}") from None


def read_picture(path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Picture:
    """Decode ``path`` into a :class:`Picture`, refusing planes of more than ``max_pixels`` pixels.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = Path(folder) / "rgb.png"
        ...     rgb = Picture(np.zeros((3, 4, 5), np.uint16), None, samples_axis=True, format="png")
        ...     write_picture(rgb, path, "png")
        ...     read_picture(path).description
        '5x4 RGB uint16'
    """
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not an image file")
    if not path.is_file():
        raise InputError(f"{path}: no such file" if not path.exists() else f"{path}: not a regular file")
    fmt = format_of(path)
    try:
        return _READERS[fmt](path, max_pixels)
    except InputError:
        raise
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except Image.DecompressionBombError:
        raise InputError(_too_large(path, None, max_pixels)) from None
    except _DECODE_ERRORS as exc:
        raise InputError(f"{path}: corrupt or truncated {fmt.upper()} file ({exc})") from None


def write_picture(picture: Picture, path: Path, fmt: str) -> None:
    """Encode ``picture`` as ``fmt`` into ``path`` (the caller chooses the dtype; see :data:`STORABLE_DTYPES`).

    Raises:
        InputError: the format cannot store the picture (see :func:`check_storable`).
    """
    check_storable(picture, path, fmt)
    _WRITERS[fmt](picture, path)


def check_storable(picture: Picture, path: Path, fmt: str) -> None:
    """Raise :class:`InputError` naming ``path`` if ``fmt`` cannot store the picture's dtype, alpha or pages.

    Example:
        >>> stack = Picture(np.zeros((3, 4, 5), np.uint8), None, samples_axis=False, format="tiff")
        >>> check_storable(stack, Path("out.png"), "png")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        xcorr.cli.errors.InputError: out.png: PNG holds one image, but this is a stack of 3; ...
    """
    if fmt in ("png", "jpeg") and picture.images > 1:
        raise InputError(
            f"{path}: {fmt.upper()} holds one image, but this is a stack of {picture.images}; "
            "write .tif or .npy to keep every page"
        )
    storable = STORABLE_DTYPES[fmt]
    if storable is not None and picture.planes.dtype not in storable:
        kinds = ", ".join(str(d) for d in storable)
        raise InputError(f"{path}: {fmt.upper()} stores {kinds} samples, not {picture.planes.dtype}; pass --dtype")
    if fmt == "jpeg" and picture.alpha is not None:
        raise InputError(f"{path}: JPEG has no alpha channel; write .png or .tif to keep it")


def _too_large(path: Path, pixels: int | None, max_pixels: int) -> str:
    size = f"{pixels:,} pixels " if pixels is not None else ""
    return (
        f"{path}: image {size}exceeds the decompression-bomb limit of {max_pixels:,} pixels "
        "(raise it with --max-pixels if you trust the file)"
    )


def _check_size(path: Path, height: int, width: int, max_pixels: int) -> None:
    if height * width > max_pixels:
        raise InputError(_too_large(path, height * width, max_pixels))


def _from_interleaved(
    samples: np.ndarray, *, samples_axis: bool, has_alpha: bool, fmt: str, info: ImageInfo, orientation: int = 1
) -> Picture:
    """The picture of file-order ``samples``, turned upright by EXIF ``orientation``."""
    samples = upright(samples, orientation, samples_axis=samples_axis)
    if not samples_axis:
        return Picture(samples, None, samples_axis=False, format=fmt, info=info)
    colour = samples[..., :-1] if has_alpha else samples
    alpha = samples[..., -1] if has_alpha else None
    planes = np.ascontiguousarray(np.moveaxis(colour, -1, -3))
    return Picture(planes, alpha, samples_axis=True, format=fmt, info=info)


def _read_png(path: Path, max_pixels: int) -> Picture:
    data = path.read_bytes()
    if data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise InputError(f"{path}: not a PNG file (bad signature)")
    width, height = struct.unpack(">II", data[16:24])
    _check_size(path, height, width, max_pixels)
    samples = imagecodecs.png_decode(data)
    has_samples = samples.ndim == 3
    info, orientation = png_info(data)
    has_alpha = has_samples and samples.shape[-1] in (2, 4)
    return _from_interleaved(
        samples, samples_axis=has_samples, has_alpha=has_alpha, fmt="png", info=info, orientation=orientation
    )


@contextmanager
def _pillow_limit(max_pixels: int) -> Iterator[None]:
    """Pillow's own bomb check uses our limit (it errors beyond twice the limit, warns beyond it: silenced here)."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _read_jpeg(path: Path, max_pixels: int) -> Picture:
    with _pillow_limit(max_pixels):
        try:
            image = Image.open(path)
        except UnidentifiedImageError:
            raise InputError(f"{path}: not a JPEG file (cannot identify image)") from None
        with image:
            _check_size(path, image.height, image.width, max_pixels)
            samples = np.asarray(image if image.mode in ("L", "RGB") else image.convert("RGB"))
            orientation, exif = split_orientation(image.getexif())
            dpi = image.info.get("dpi")
            density = (float(dpi[0]), float(dpi[1])) if dpi else None
            info = ImageInfo(image.info.get("icc_profile") or None, density, exif)
    return _from_interleaved(
        samples, samples_axis=samples.ndim == 3, has_alpha=False, fmt="jpeg", info=info, orientation=orientation
    )


def _read_tiff(path: Path, max_pixels: int) -> Picture:
    with tifffile.TiffFile(path) as tif:
        series, axes = _tiff_series(path, tif)
        first = series[0]
        if "S" in axes:
            order = [i for i, a in enumerate(axes) if a != "S"] + [axes.index("S")]
            axes = "".join(axes[i] for i in order)
        else:
            order = list(range(len(axes)))
        if not axes.replace("S", "").endswith("YX"):
            raise InputError(f"{path}: unsupported TIFF layout {first.axes!r}; expected ...YX or ...YXS")
        _check_size(path, first.shape[first.axes.index("Y")], first.shape[first.axes.index("X")], max_pixels)
        stored = np.stack([s.asarray() for s in series]) if len(series) > 1 else first.asarray()
        samples = np.transpose(stored, order)
        page = tif.pages.first
        extrasamples = tuple(int(e) for e in page.extrasamples)
        info, orientation = _tiff_info(page)
    if samples.dtype.kind not in "uif":
        raise InputError(f"{path}: unsupported TIFF sample type {samples.dtype}")
    has_samples = axes.endswith("S") and samples.shape[-1] > 1
    if axes.endswith("S") and not has_samples:
        samples = samples[..., 0]
    has_alpha = has_samples and bool(extrasamples) and extrasamples[-1] in _TIFF_ALPHA
    return _from_interleaved(
        samples, samples_axis=has_samples, has_alpha=has_alpha, fmt="tiff", info=info, orientation=orientation
    )


def _tiff_series(path: Path, tif: tifffile.TiffFile) -> tuple[list[tifffile.TiffPageSeries], str]:
    """Every image series of the file and the axes of their stack: one series, or equal ones stacked (``I...``).

    Raises:
        InputError: series of different shapes or types, or pages in no series (never a silent drop).
    """
    series = list(tif.series)
    described = [f"{'x'.join(map(str, s.shape))} {s.dtype}" for s in series]
    if len(set(described)) > 1:
        listing = "; ".join(f"series {i}: {d}" for i, d in enumerate(described))
        raise InputError(
            f"{path}: its {len(series)} image series differ in size or type ({listing}); xcorr filters every page "
            "of a file or none: split it into files of one size first"
        )
    in_series = sum(len(s.pages) for s in series)
    if in_series != len(tif.pages):
        raise InputError(
            f"{path}: {len(tif.pages)} pages, of which only {in_series} form images xcorr can stack; "
            "split the file into one image per file first"
        )
    axes = series[0].axes if len(series) == 1 else "I" + series[0].axes
    return series, axes


def _tiff_info(page: tifffile.TiffPage) -> tuple[ImageInfo, int]:
    """Colour profile, resolution in DPI (inch or centimetre units) and the Orientation tag of a TIFF page."""
    per_inch = {2: 1.0, 3: 2.54}.get(int(page.resolutionunit))
    dpi = (float(page.resolution[0]) * per_inch, float(page.resolution[1]) * per_inch) if per_inch else None
    tag = page.tags.get(274)
    orientation = int(tag.value) if tag is not None and 1 <= int(tag.value) <= 8 else 1
    icc = page.tags.get(34675)
    return ImageInfo(bytes(icc.value) if icc is not None else None, dpi, None), orientation


def _read_npy(path: Path, max_pixels: int) -> Picture:
    with path.open("rb") as f:
        version = np.lib.format.read_magic(f)
        header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        _shape, _fortran, dtype = header(f)
    if dtype.hasobject:
        raise InputError(
            f"{path}: .npy holds pickled Python objects (dtype {dtype}), not numbers; xcorr never unpickles files: "
            "save a numeric array instead"
        )
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    if array.ndim < 2:
        raise InputError(f"{path}: .npy array has shape {array.shape}; expected (H, W) or (..., H, W)")
    if array.dtype.kind not in "buif":
        raise InputError(f"{path}: .npy dtype {array.dtype} is not numeric")
    _check_size(path, array.shape[-2], array.shape[-1], max_pixels)
    return Picture(np.array(array), None, samples_axis=False, format="npy")


def _write_png(picture: Picture, path: Path) -> None:
    path.write_bytes(with_png_info(bytes(imagecodecs.png_encode(picture.interleaved())), picture.info))


def _write_jpeg(picture: Picture, path: Path) -> None:
    info = picture.info
    extra = {"icc_profile": info.icc_profile, "dpi": info.dpi, "exif": info.exif}
    options = {key: value for key, value in extra.items() if value is not None}
    Image.fromarray(picture.interleaved()).save(path, format="JPEG", quality=JPEG_QUALITY, subsampling=0, **options)


def _write_tiff(picture: Picture, path: Path) -> None:
    colours = picture.planes.shape[-3] if picture.samples_axis else 1
    info = picture.info
    tifffile.imwrite(
        path,
        picture.interleaved(),
        photometric="rgb" if colours == 3 else "minisblack",
        planarconfig="contig" if picture.samples_axis else None,
        extrasamples=("unassalpha",) if picture.alpha is not None else None,
        iccprofile=info.icc_profile,
        resolution=info.dpi,
        resolutionunit="INCH" if info.dpi is not None else None,
    )


def _write_npy(picture: Picture, path: Path) -> None:
    with path.open("wb") as f:
        np.save(f, picture.interleaved(), allow_pickle=False)


_READERS = {"png": _read_png, "jpeg": _read_jpeg, "tiff": _read_tiff, "npy": _read_npy}
_WRITERS = {"png": _write_png, "jpeg": _write_jpeg, "tiff": _write_tiff, "npy": _write_npy}
