"""Output safety: never write over an input, refuse to replace a file without ``--force``, never leave half a file.

Every output is written into a private staging directory beside the target and then renamed over it, so an
interrupted run (Ctrl-C, a full disk, a crash in an encoder) leaves either the old file or nothing, never a
truncated image; the staging directory is always removed. ``--force`` replaces files only: a directory at an output
path is refused (a ``.zarr`` output may replace one Zarr store), see :mod:`xcorr.outputs`. A filesystem failure
(read-only, full disk, permission) is one :class:`InputError` line naming the path.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from xcorr.cli.errors import InputError
from xcorr.outputs import ZARR_SUFFIX, replace_refusal


def check_target(target: Path, *, inputs: Iterable[Path], force: bool) -> None:
    """Raise :class:`InputError` if writing ``target`` would clobber an input, or an existing file without ``force``.

    Paths are compared after resolving symbolic links, and by inode when both exist (hard links).

    Example:
        >>> check_target(Path("photo.png"), inputs=[Path("photo.png")], force=True)
        Traceback (most recent call last):
        ...
        xcorr.cli.errors.InputError: photo.png: refusing to write over the input photo.png; choose another output
    """
    resolved = target.resolve()
    for source in inputs:
        same = source.resolve() == resolved or (
            target.exists() and source.exists() and os.path.samefile(source, target)
        )
        if same:
            raise InputError(f"{target}: refusing to write over the input {source}; choose another output")
    _refuse_unreplaceable(target)
    if target.exists() and not force:
        raise InputError(f"{target}: already exists; pass --force to overwrite it")
    if not target.parent.is_dir():
        raise InputError(f"{target}: directory {target.parent} does not exist")


def _refuse_unreplaceable(target: Path) -> None:
    refusal = replace_refusal(target, store=target.suffix.lower() == ZARR_SUFFIX)
    if refusal is not None:
        raise InputError(f"{target}: {refusal}")


@contextmanager
def atomic_output(target: Path) -> Iterator[Path]:
    """Yield a path to write (a file or a directory) that replaces ``target`` only when the block succeeds.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     with atomic_output(Path(folder) / "kernel.txt") as staged:
        ...         _ = staged.write_text("-1 1")
        ...     sorted(p.name for p in Path(folder).iterdir())
        ['kernel.txt']
    """
    _refuse_unreplaceable(target)  # checked again here: every writer goes through this block
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    except OSError as exc:
        raise InputError(f"{target}: cannot write in {target.parent} ({exc.strerror or exc})") from None
    try:
        staged = staging / target.name
        try:
            yield staged
            if not staged.exists():
                raise RuntimeError(f"internal error: nothing was written for {target}")
            if target.is_dir() or (target.exists() and staged.is_dir()):
                target.rename(staging / "replaced")  # a Zarr store (see replace_refusal), or a file under a store
            os.replace(staged, target)
        except OSError as exc:
            raise InputError(f"{target}: cannot write ({exc.strerror or exc})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
