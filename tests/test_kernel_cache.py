"""numba's disk cache follows every kernel module's source, not only the kernel's own file (xcorr.kernel_cache)."""

import subprocess
import sys
import textwrap
from pathlib import Path

from xcorr import kernel_cache

HELPER = "import numba\n\n@numba.njit(cache=True)\ndef helper(x):\n    return x + {offset}\n"
CALLER = (
    "import numba\nfrom toy_helper import helper\n\n@numba.njit(cache=True)\ndef caller(x):\n    return helper(x)\n"
)
RUN = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    import toy_caller, toy_helper
    from xcorr import kernel_cache
    if sys.argv[2] == "guarded":
        kernel_cache.keep_in_step([toy_caller, toy_helper])
    print(toy_caller.caller(1))
    """
)


def _run(folder: Path, guarded: bool = True) -> int:
    arguments = [sys.executable, "-c", RUN, str(folder), "guarded" if guarded else "bare"]
    done = subprocess.run(arguments, capture_output=True, text=True, check=True)
    return int(done.stdout.strip().splitlines()[-1])


def test_a_kernel_that_inlined_a_changed_module_is_compiled_again(tmp_path: Path) -> None:
    """numba alone reuses ``caller``'s cached code, the old ``helper`` inside (1 + 10 again); the guard does not."""
    (tmp_path / "toy_helper.py").write_text(HELPER.format(offset=10))
    (tmp_path / "toy_caller.py").write_text(CALLER)
    assert _run(tmp_path) == 11
    assert _run(tmp_path) == 11  # now from the cache
    (tmp_path / "toy_helper.py").write_text(HELPER.format(offset=200))  # only the helper's file changes
    assert _run(tmp_path, guarded=False) == 11  # numba's own check: stale
    assert _run(tmp_path) == 201
    assert _run(tmp_path) == 201  # and cached again
    assert (tmp_path / "__pycache__" / kernel_cache.MARKER).read_text()
