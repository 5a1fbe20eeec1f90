"""Out-of-core filtering of a Zarr image with Dask: xcorr.dask against dask-image, memory and speed (issue 5).

A (size x size) float32 Zarr array (16384^2 = 1 GiB by default, chunks 2048^2) is filtered with a random
(k x k) kernel (31 x 31), boundary "constant", into a new Zarr array, once by ``xcorr.dask.filter_to_zarr`` and
once by ``dask_image.ndfilters.correlate`` (scipy.ndimage per chunk), each in its own process on the same Dask
threaded scheduler with the same number of threads. The parent samples the resident memory (RSS) of each child's
whole process tree every 20 ms. Then sampled tiles of both outputs are compared with a float64 SciPy reference
computed from the source tile plus its halo.

Run: ``python -m bench.dask_bench`` (``--help`` for sizes). Prints machine info and a Markdown table.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
from scipy.signal import correlate

ENGINES = ("xcorr.dask", "dask_image")


def _kernel(size: int) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((size, size)).astype(np.float32)


def make_source(path: Path, size: int, chunk: int) -> None:
    """Random float32 Zarr array, written chunk by chunk (never whole in memory)."""
    import dask.array as da

    if path.exists():
        return
    image = da.random.default_rng(0).random((size, size), dtype=np.float32, chunks=chunk)
    image.to_zarr(str(path), compressors=None)  # noise does not compress: both engines read and write raw chunks


def run_engine(engine: str, source: Path, target: Path, kernel_size: int, threads: int) -> float:
    """Filter ``source`` into ``target`` with one engine; return the wall time (called in a child process).

    xcorr gets the store's path (each task reads its own window from it); dask-image gets ``da.from_zarr`` of the
    same store: both read the same chunks from the same store on the same scheduler.
    """
    import dask
    import dask.array as da
    from dask_image.ndfilters import correlate as dask_image_correlate

    import xcorr.dask

    kernel = _kernel(kernel_size)
    start = time.perf_counter()  # imports done: both engines are timed from the same point
    with dask.config.set(scheduler="threads", num_workers=threads):
        if engine == "xcorr.dask":
            xcorr.dask.filter_to_zarr(source, target, kernel, boundary="constant", overwrite=True, compressors=None)
        else:
            dask_image_correlate(da.from_zarr(str(source)), kernel, mode="constant", cval=0.0).to_zarr(
                str(target), overwrite=True, compressors=None
            )
    return time.perf_counter() - start


def measure(engine: str, args: argparse.Namespace, target: Path) -> dict[str, float]:
    """Run one engine in a child process; return its wall time and the peak RSS of its process tree."""
    command = [sys.executable, "-m", "bench.dask_bench", "--child", engine, "--target", str(target)]
    command += ["--dir", str(args.dir), "--size", str(args.size), "--chunk", str(args.chunk)]
    command += ["--kernel", str(args.kernel), "--threads", str(args.threads)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    root = psutil.Process(child.pid)
    peak = 0
    while child.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree))
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.02)
    output, _ = child.communicate()
    if child.returncode:
        raise RuntimeError(f"{engine} failed with exit code {child.returncode}")
    return {"seconds": json.loads(output.strip().splitlines()[-1])["seconds"], "peak_rss_mib": peak / 2**20}


def tile_errors(source: Path, target: Path, kernel_size: int, tile: int, count: int) -> float:
    """Largest |output - float64 reference| / (max|x| * sum|k|) over the corners and random tiles of the output."""
    import zarr

    x, y = zarr.open_array(str(source), mode="r"), zarr.open_array(str(target), mode="r")
    k = _kernel(kernel_size).astype(np.float64)
    height, width = x.shape
    half = (kernel_size - 1) // 2
    rng = np.random.default_rng(2)
    corners = [(0, 0), (0, width - tile), (height - tile, 0), (height - tile, width - tile)]
    randoms = [(int(rng.integers(0, height - tile)), int(rng.integers(0, width - tile))) for _ in range(count)]
    worst = 0.0
    for r, c in corners + randoms:
        r0, r1, c0, c1 = r - half, r + tile + kernel_size - 1 - half, c - half, c + tile + kernel_size - 1 - half
        window = np.zeros((r1 - r0, c1 - c0))  # boundary "constant": zeros outside the image
        sr0, sr1, sc0, sc1 = max(r0, 0), min(r1, height), max(c0, 0), min(c1, width)
        window[sr0 - r0 : sr1 - r0, sc0 - c0 : sc1 - c0] = x[sr0:sr1, sc0:sc1]
        reference = correlate(window, k, mode="valid", method="direct" if tile <= 64 else "fft")
        scale = np.abs(window).max() * np.abs(k).sum()
        worst = max(worst, float(np.abs(y[r : r + tile, c : c + tile] - reference).max() / scale))
    return worst


def machine() -> str:
    import dask
    import scipy
    import torch
    import zarr

    from xcorr import __version__

    versions = f"xcorr {__version__}, torch {torch.__version__}, dask {dask.__version__}, zarr {zarr.__version__}"
    versions += f", scipy {scipy.__version__}, dask-image {importlib.metadata.version('dask-image')}"
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return f"{platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, load {load}; {versions}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=16384, help="image side (pixels)")
    parser.add_argument("--chunk", type=int, default=2048, help="Zarr/Dask chunk side")
    parser.add_argument("--kernel", type=int, default=31, help="kernel side")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="Dask threads (both engines)")
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "xcorr-dask-bench")
    parser.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--target", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    source = args.dir / f"source-{args.size}-{args.chunk}.zarr"
    if args.child:
        seconds = run_engine(args.child, source, args.target, args.kernel, args.threads)
        print(json.dumps({"seconds": seconds}))
        return
    args.dir.mkdir(parents=True, exist_ok=True)
    make_source(source, args.size, args.chunk)
    gib = args.size * args.size * 4 / 2**30
    print(f"machine: {machine()}")
    print(
        f"case: {args.size}x{args.size} float32 Zarr ({gib:.2f} GiB), chunks {args.chunk}^2, kernel "
        f"{args.kernel}x{args.kernel}, boundary constant, Dask threaded scheduler with {args.threads} threads; "
        "peak RSS = whole child process tree, sampled every 20 ms\n"
    )
    print("| engine | seconds | peak RSS (MiB) | speed-up vs dask-image | max tile error / (max|x| sum|k|) |")
    print("|---|---:|---:|---:|---:|", flush=True)
    seconds = {}
    for engine in args.engines:  # xcorr first: its row prints before the long dask-image run
        target = args.dir / f"out-{engine}.zarr"
        result = measure(engine, args, target)
        error = tile_errors(source, target, args.kernel, 256, 6)
        seconds[engine] = result["seconds"]
        print(f"| {engine} | {result['seconds']:.1f} | {result['peak_rss_mib']:.0f} | - | {error:.1e} |", flush=True)
    if len(seconds) == len(ENGINES):
        print(f"\nxcorr.dask is {seconds['dask_image'] / seconds['xcorr.dask']:.1f}x faster than dask-image")


if __name__ == "__main__":
    main()
