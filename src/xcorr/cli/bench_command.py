"""``xcorr bench``: run the benchmark suite (``python -m bench``) of a source checkout against this xcorr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

import xcorr
from xcorr.cli.errors import UsageError

EXAMPLES = """\
Examples:

  xcorr bench --quick

  xcorr bench -- --help        (the benchmark's own options)

The benchmark ships with the source checkout, not with the installed package: run this from the checkout (or
any directory holding bench/), or run 'python -m bench' there yourself.
"""


def find_bench_root() -> Path | None:
    """The directory holding ``bench/__main__.py``: the current directory, else the checkout xcorr was loaded from."""
    checkout = Path(xcorr.__file__).resolve().parents[2]  # <checkout>/src/xcorr/__init__.py
    for root in (Path.cwd(), checkout):
        if (root / "bench" / "__main__.py").is_file():
            return root
    return None


def bench_command(
    ctx: typer.Context,
    quick: Annotated[bool, typer.Option("--quick", help="A few small cases (about a minute).")] = False,
) -> None:
    """Run the benchmark table on this machine (needs a source checkout with bench/)."""
    root = find_bench_root()
    if root is None:
        raise UsageError(
            "the benchmark is not installed with xcorr; from a source checkout run: python -m bench"
            + (" --quick" if quick else "")
        )
    source_dir = str(Path(xcorr.__file__).resolve().parents[1])  # benchmark the xcorr that runs this command
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [source_dir, os.environ.get("PYTHONPATH")]))}
    argv = [sys.executable, "-m", "bench", *(["--quick"] if quick else []), *ctx.args]
    raise typer.Exit(subprocess.run(argv, cwd=root, env=env, check=False).returncode)
