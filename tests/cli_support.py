"""Helpers for the CLI tests: run ``xcorr`` in-process or as a real subprocess, and an independent reference."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import scipy.signal

from tests.naive import extended
from xcorr.cli.app import main

SRC = Path(__file__).resolve().parents[1] / "src"


@dataclass(frozen=True)
class Run:
    """Exit code and the two streams of one ``xcorr`` run."""

    code: int
    out: str
    err: str


def run_cli(capsys: pytest.CaptureFixture[str], *args: object) -> Run:
    """``xcorr ARGS`` in this process (fast: no interpreter or torch start-up)."""
    capsys.readouterr()
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def run_script(*args: object, cwd: Path | None = None) -> Run:
    """``python -m xcorr ARGS`` as a real subprocess, the way a user's shell runs the console script."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, "-m", "xcorr", *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )
    return Run(done.returncode, done.stdout, done.stderr)


def reference_filter(
    image: np.ndarray, kernel: np.ndarray, mode: str = "same", boundary: str = "constant"
) -> np.ndarray:
    """SciPy's float64 correlation of one (H, W) plane after ``numpy.pad`` (the documented definition)."""
    padded = extended(image, kernel.shape, mode, boundary)
    return scipy.signal.correlate2d(padded, np.asarray(kernel, np.float64), mode="valid")


def leftovers(folder: Path) -> list[str]:
    """Staging directories an interrupted or failed write would have left behind."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial"))
