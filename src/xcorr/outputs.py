"""What an output path may replace: a file, or (for a Zarr output) one Zarr store; never any other directory.

The CLI's ``--force`` and the library's ``overwrite=True`` share this rule, so neither can delete a directory the
user did not create as an output (``xcorr filter a.png -o thesis/ --force`` must not remove ``thesis/``).
"""

from __future__ import annotations

from pathlib import Path

ZARR_SUFFIX = ".zarr"
_ZARR_MARKERS = ("zarr.json", ".zarray", ".zgroup")  # Zarr v3 metadata; v2 array and group metadata


def is_zarr_store(path: Path) -> bool:
    """Whether ``path`` is a directory holding a Zarr array or group (v2 or v3 metadata at its root).

    Example:
        >>> is_zarr_store(Path("no/such/dir.zarr"))
        False
    """
    return path.is_dir() and any((path / marker).is_file() for marker in _ZARR_MARKERS)


def replace_refusal(target: Path, *, store: bool) -> str | None:
    """Why an existing ``target`` must not be replaced by an output, or ``None`` when it may be.

    A missing path or a file may be replaced; a directory only when it is a Zarr store and the output is a Zarr
    store too (``store=True``). Symbolic links are judged by what they point to.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     print(replace_refusal(Path(folder) / "new.png", store=False))
        ...     print(replace_refusal(Path(folder), store=True))  # doctest: +ELLIPSIS
        None
        is a directory that is not a Zarr store; an output replaces files and Zarr stores only (...)
    """
    if not target.is_dir() or (store and is_zarr_store(target)):
        return None
    what = "a directory that is not a Zarr store" if store else "a directory, not a file"
    return f"is {what}; an output replaces files and Zarr stores only (remove it yourself, or choose another name)"
