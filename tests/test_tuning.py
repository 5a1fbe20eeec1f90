"""The tuning cache: shared by concurrent processes without losing winners, never fatal, never trusted blindly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import xcorr
from xcorr import tuning
from xcorr.planner import describe

SRC = Path(__file__).resolve().parents[1] / "src"

WRITER = textwrap.dedent(
    """
    import sys, time
    import xcorr.tuning as tuning
    from xcorr.planner import describe
    worker, count, start = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    time.sleep(max(0.0, start - time.time()))  # every process starts writing at the same moment
    for i in range(count):
        size = 8 + worker * count + i  # every process has its own shapes
        tuning.record(describe((1, 1, size, size), (1, 1, 3, 3)), "direct")
    """
)


def test_four_processes_recording_at_once_keep_every_winner(tmp_path: Path) -> None:
    env = {**os.environ, "XCORR_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(SRC)}
    start = str(time.time() + 15)  # after every interpreter has imported torch
    processes = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(worker), "40", start], env=env) for worker in range(4)
    ]
    assert [p.wait(timeout=300) for p in processes] == [0, 0, 0, 0]
    entries = json.loads((tmp_path / "tuning.json").read_text())["entries"]
    assert len(entries) == 160
    assert set(entries.values()) == {"direct"}
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []


def test_an_entry_naming_an_unknown_algorithm_is_ignored() -> None:
    problem = describe((1, 1, 40, 40), (1, 1, 3, 3))
    tuning.record(problem, "winograd-from-the-future")
    choice = xcorr.plan((1, 1, 40, 40), (1, 1, 3, 3)).forward
    assert choice.algorithm in xcorr.algorithms()
    assert choice.reason == "cheapest by the cost model"
    out = xcorr.filter2d(xcorr.kernels.box(3), xcorr.kernels.box(3), mode="valid")  # calls still run
    assert out.shape == (1, 1)


def test_an_unwritable_cache_warns_and_the_winner_is_still_used(tmp_path: Path, monkeypatch) -> None:
    blocked = tmp_path / "cache"
    (blocked / "tuning.json").mkdir(parents=True)  # a directory where the file should be
    monkeypatch.setenv("XCORR_CACHE_DIR", str(blocked))
    with pytest.warns(RuntimeWarning, match="could not save its tuning cache"):
        plan = xcorr.tune((1, 1, 48, 48), (1, 1, 3, 3), repeats=1)
    assert plan.forward.reason == "measured fastest on this machine"
    assert (blocked / "tuning.json").is_dir()


def test_a_cache_directory_that_is_a_file_warns(tmp_path: Path, monkeypatch) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("mine")
    monkeypatch.setenv("XCORR_CACHE_DIR", str(not_a_dir))
    with pytest.warns(RuntimeWarning, match="XCORR_CACHE_DIR"):
        xcorr.tune((1, 1, 50, 50), (1, 1, 3, 3), repeats=1)
    assert not_a_dir.read_text() == "mine"
