"""Cold start: ``import xcorr`` and the first calls in a fresh process, with an empty and with a warm numba cache.

Numba compiles xcorr's kernels on first use and keeps them on disk (``cache=True``). Each measurement runs in a
new Python process with ``NUMBA_CACHE_DIR`` pointing at a private directory: the first process finds it empty and
compiles (and fills it), the second finds it filled. Each process times ``import xcorr``, then every step below
twice: the first call (planning, compiling or loading kernels, allocator growth) and the second (steady state).

Run alone: ``python -m bench --cold-start``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.cases import Case

STEPS = (
    Case("filter2d gray 1024x1024 k7", "filter", (1024, 1024), 7),
    Case("filter2d gaussian 1024x1024 k31", "filter", (1024, 1024), 31, gaussian=True),
    Case(
        "conv2d depthwise 2x16x32x32 k7 fwd+bwd", "layer", (2, 16, 32, 32), 7, out_channels=16, groups=16, backward=True
    ),
)
REPOSITORY = Path(__file__).resolve().parents[1]
CACHE_STATES = ("empty numba cache", "warm numba cache")


def child(threads: int) -> dict[str, object]:
    """In a fresh process: seconds for ``import xcorr`` and for the first and second call of every step."""
    start = time.perf_counter()
    import xcorr  # noqa: F401  (the import is what is timed)

    import_s = time.perf_counter() - start
    from bench.cases import make_inputs
    from bench.machine import set_threads
    from bench.peers import xcorr_runner
    from bench.timing import timed

    set_threads(threads)
    steps = {}
    for case in STEPS:
        runner = xcorr_runner(case, make_inputs(case, 0), threads)
        steps[case.name] = {"first_s": timed(runner.call)[1], "second_s": timed(runner.call)[1]}
    return {"import_s": import_s, "steps": steps}


def measure(threads: int) -> dict[str, dict[str, object]]:
    """Run :func:`child` in two fresh processes sharing a new numba cache directory: empty, then warm."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="xcorr-numba-cache-") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for state in CACHE_STATES:
            command = [sys.executable, "-m", "bench.cold_start", str(threads)]
            done = subprocess.run(command, env=env, cwd=REPOSITORY, capture_output=True, text=True, check=True)
            results[state] = json.loads(done.stdout.splitlines()[-1])
    return results


if __name__ == "__main__":
    print(json.dumps(child(int(sys.argv[1]))))
