"""Where the CLI writes: data to stdout, messages and progress bars to stderr (so ``--json`` output stays clean)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

# No ``file=``: rich then resolves sys.stdout / sys.stderr at each write, so redirections (and pytest) see the output.
stdout = Console(highlight=False, soft_wrap=True, emoji=False)
stderr = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def emit_json(data: Any) -> None:
    """Write ``data`` to stdout as one line of JSON (for ``--json``; pipe it to ``jq`` to read it)."""
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


def error(message: str) -> None:
    """Print one ``xcorr: error: ...`` line on stderr (markup disabled: file names may contain brackets)."""
    stderr.print(f"xcorr: error: {message}", markup=False, style="red")


def note(message: str, *, quiet: bool) -> None:
    """Print an informational line on stderr unless ``quiet``."""
    if not quiet:
        stderr.print(message, markup=False)


@contextmanager
def progress_bar(*, enabled: bool) -> Iterator[Progress]:
    """A rich progress bar on stderr (``M/N``, elapsed time, a free-text status field); silent when not ``enabled``."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
    )
    with Progress(*columns, console=stderr, disable=not (enabled and stderr.is_terminal), transient=True) as progress:
        yield progress
