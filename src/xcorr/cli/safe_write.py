"""Output safety: never write over an input, refuse to replace a file without ``--force``, never leave half a file.

Every output is written into a private staging directory beside the target and then renamed over it, so an
interrupted run (Ctrl-C, a full disk, a crash in an encoder) leaves either the old file or nothing, never a
truncated image; the staging directory is always removed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from xcorr.cli.errors import InputError


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
    if target.exists() and not force:
        raise InputError(f"{target}: already exists; pass --force to overwrite it")
    if not target.parent.is_dir():
        raise InputError(f"{target}: directory {target.parent} does not exist")


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
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        staged = staging / target.name
        yield staged
        if not staged.exists():
            raise RuntimeError(f"internal error: nothing was written for {target}")
        if target.exists() and (target.is_dir() or staged.is_dir()):
            target.rename(staging / "replaced")
        os.replace(staged, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
