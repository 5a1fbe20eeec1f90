"""The machine and software a run measured: thread counts for every library, CPU, versions, commit, date."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

import xcorr
from bench.timing import FULL_POLICY, QUICK_POLICY, Policy

REPOSITORY = Path(__file__).resolve().parents[1]

# Distributions whose versions the header records (peers are optional: "not installed" where absent).
DISTRIBUTIONS = (
    "torch",
    "numpy",
    "scipy",
    "opencv-python-headless",
    "fft-conv-pytorch",
    "numba",
    "dask-image",
    "pyvips",
    "timm",
    "torchvision",
)


def set_threads(threads: int) -> dict[str, int | str]:
    """Give every library ``threads`` threads; return the count each reports back (SciPy's FFT gets ``workers=``
    per call, ``scipy.ndimage`` is single-threaded)."""
    torch.set_num_threads(threads)
    counts: dict[str, int | str] = {"torch": torch.get_num_threads()}
    try:
        import cv2

        cv2.setNumThreads(threads)
        counts["opencv"] = cv2.getNumThreads()
    except ImportError:
        counts["opencv"] = "not installed"
    import numba

    with contextlib.suppress(ValueError):  # more than NUMBA_NUM_THREADS (fixed at import): the count below tells
        numba.set_num_threads(threads)
    counts["numba"] = numba.get_num_threads()
    counts["scipy.fft workers"] = threads
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)  # BLAS and OpenMP pools of NumPy/SciPy
        counts["blas/openmp"] = threads
    except ImportError:
        counts["blas/openmp"] = "threadpoolctl not installed"
    return counts


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPOSITORY, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout, or no commit yet)"
    try:
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        dirty = False
    return commit + ("+uncommitted changes" if dirty else "")


def describe(threads: dict[str, int | str]) -> dict[str, object]:
    """The header of a run: CPU, cores, load, memory, thread counts, versions, git commit and date (UTC)."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    try:
        memory_gib: float | None = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        memory_gib = None
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "logical cores": os.cpu_count(),
        "load average (1, 5, 15 min)": None if load is None else [round(v, 2) for v in load],
        "memory GiB": None if memory_gib is None else round(memory_gib, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "threads": threads,
        "versions": {"xcorr": xcorr.__version__, **{d: _version(d) for d in DISTRIBUTIONS}},
        "native thread pools": _thread_pools(),
        "git commit": _git_commit(),
    }


def _thread_pools() -> str:
    try:
        from threadpoolctl import threadpool_info

        pools = {
            f"{pool['internal_api']} {pool.get('version')} ({pool['num_threads']} threads)"
            for pool in threadpool_info()
        }
        return ", ".join(sorted(pools))
    except ImportError:
        return "unknown"


def start_run(prog: str, description: str, argv: list[str] | None) -> tuple[np.random.Generator, Policy, int]:
    """The shared command line of the image benchmarks (``--quick``, ``--threads``, ``--seed``): threads set, the
    machine header printed; returns the seeded generator, the timing policy and the image scale-down (8 quick)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--quick", action="store_true", help="small images, short timing")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(json.dumps(describe(set_threads(args.threads)), indent=1))
    policy, scale = (QUICK_POLICY, 8) if args.quick else (FULL_POLICY, 1)
    return np.random.default_rng(args.seed), policy, scale
