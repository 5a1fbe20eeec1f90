"""What an image file says besides its samples, carried from input to output: colour profile, resolution, EXIF.

- **Orientation**: a camera's EXIF orientation tag (JPEG, PNG ``eXIf``, TIFF's Orientation tag) is applied when the
  file is read, so the image is filtered as it is displayed, and the output is written upright without the tag
  (the other EXIF fields are kept). A kernel such as ``sobel-x`` then responds to what the viewer calls "x".
- **ICC profile** and **resolution** (DPI) are copied to the output wherever its format stores them: PNG
  (``iCCP``, ``pHYs``), JPEG (APP2, JFIF density), TIFF (InterColorProfile, X/YResolution). ``.npy`` stores none.

PNG chunks are read and written here directly (the PNG codec, imagecodecs' libpng binding, handles samples only).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

ORIENTATION_TAG = 0x0112
_METERS_PER_INCH = 0.0254
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_EXIF_PREFIX = b"Exif\0\0"  # in JPEG's APP1 and Pillow's bytes, not in PNG's eXIf chunk


@dataclass(frozen=True)
class ImageInfo:
    """Metadata carried from an input file to its output.

    ``icc_profile``: the embedded colour profile, raw bytes. ``dpi``: (x, y) pixels per inch. ``exif``: the EXIF
    block as ``PIL.Image.Exif.tobytes()`` gives it (``Exif\\0\\0`` and a TIFF header), orientation tag removed.

    Example:
        >>> ImageInfo(dpi=(300.0, 300.0)).dpi
        (300.0, 300.0)
    """

    icc_profile: bytes | None = None
    dpi: tuple[float, float] | None = None
    exif: bytes | None = None


def split_orientation(exif: bytes | Image.Exif | None) -> tuple[int, bytes | None]:
    """The EXIF orientation (1 = upright when absent or invalid) and the EXIF block without that tag.

    Example:
        >>> exif = Image.Exif()
        >>> exif[ORIENTATION_TAG] = 6
        >>> split_orientation(exif.tobytes())[0]
        6
    """
    if exif is None:
        return 1, None
    if isinstance(exif, bytes):
        parsed = Image.Exif()
        try:
            parsed.load(exif)
        except Exception:  # a malformed EXIF block is not worth failing a file: nothing to apply, nothing kept
            return 1, None
        exif = parsed
    orientation = exif.get(ORIENTATION_TAG, 1)
    exif.pop(ORIENTATION_TAG, None)
    rest = exif.tobytes() if len(exif) else None
    return (orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1), rest


def upright(samples: np.ndarray, orientation: int, *, samples_axis: bool) -> np.ndarray:
    """``samples`` (..., H, W) or (..., H, W, S) turned as a viewer displays EXIF ``orientation`` (1-8).

    The eight values are the mirror images and quarter turns of the TIFF/EXIF specification, as
    ``PIL.ImageOps.exif_transpose`` applies them.

    Example:
        >>> upright(np.array([[1, 2], [3, 4]]), 6, samples_axis=False)  # stored rotated 90 degrees anticlockwise
        array([[3, 1],
               [4, 2]])
    """
    rows, cols = (-3, -2) if samples_axis else (-2, -1)
    turned = {
        1: lambda a: a,
        2: lambda a: np.flip(a, cols),
        3: lambda a: np.flip(a, (rows, cols)),
        4: lambda a: np.flip(a, rows),
        5: lambda a: np.swapaxes(a, rows, cols),
        6: lambda a: np.flip(np.swapaxes(a, rows, cols), cols),
        7: lambda a: np.flip(np.swapaxes(a, rows, cols), (rows, cols)),
        8: lambda a: np.flip(np.swapaxes(a, rows, cols), rows),
    }[orientation](samples)
    return np.ascontiguousarray(turned)


def png_chunks(data: bytes) -> dict[bytes, bytes]:
    """The first chunk of each type in PNG ``data``, by type (``b"iCCP"``, ``b"pHYs"``, ...); stops at IDAT.

    Example:
        >>> png_chunks(PNG_SIGNATURE)
        {}
    """
    chunks: dict[bytes, bytes] = {}
    position = len(PNG_SIGNATURE)
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        if kind == b"IDAT":
            break
        chunks.setdefault(kind, data[position + 8 : position + 8 + length])
        position += 12 + length
    return chunks


def png_info(data: bytes) -> tuple[ImageInfo, int]:
    """The :class:`ImageInfo` and EXIF orientation of PNG ``data`` (damaged metadata chunks are ignored).

    Example:
        >>> png_info(PNG_SIGNATURE)
        (ImageInfo(icc_profile=None, dpi=None, exif=None), 1)
    """
    chunks = png_chunks(data)
    icc = None
    if b"iCCP" in chunks:
        _name, _, compressed = chunks[b"iCCP"].partition(b"\0")
        try:
            icc = zlib.decompress(compressed[1:])  # after the compression-method byte
        except zlib.error:
            icc = None
    dpi = None
    if len(chunks.get(b"pHYs", b"")) == 9:
        x, y, unit = struct.unpack(">IIB", chunks[b"pHYs"])
        dpi = (x * _METERS_PER_INCH, y * _METERS_PER_INCH) if unit == 1 else None
    raw_exif = chunks.get(b"eXIf")
    orientation, exif = split_orientation(_EXIF_PREFIX + raw_exif if raw_exif is not None else None)
    return ImageInfo(icc, dpi, exif), orientation


def with_png_info(encoded: bytes, info: ImageInfo) -> bytes:
    """PNG ``encoded`` with ``info``'s chunks inserted after IHDR (they must precede the image data).

    Example:
        >>> import imagecodecs
        >>> png = with_png_info(imagecodecs.png_encode(np.zeros((2, 2), np.uint8)), ImageInfo(dpi=(300.0, 300.0)))
        >>> round(png_info(png)[0].dpi[0], 3)
        300.0
    """
    extra = b""
    if info.icc_profile is not None:
        extra += _png_chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(info.icc_profile))
    if info.dpi is not None:
        x, y = (round(d / _METERS_PER_INCH) for d in info.dpi)
        extra += _png_chunk(b"pHYs", struct.pack(">IIB", x, y, 1))
    if info.exif is not None:
        extra += _png_chunk(b"eXIf", info.exif.removeprefix(_EXIF_PREFIX))
    end_of_header = len(PNG_SIGNATURE) + 8 + struct.unpack(">I", encoded[8:12])[0] + 4
    return encoded[:end_of_header] + extra + encoded[end_of_header:]


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
