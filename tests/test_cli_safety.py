"""Nothing lost, nothing surprising: outputs replace files only, every failure is one line, Ctrl-C is reported."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage
import zarr
from PIL import Image

import xcorr.dask
from tests.cli_support import SRC, leftovers, reference_filter, run_cli
from xcorr.cli import images


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 24), dtype=np.uint8)).save(path)
    return path


def test_force_never_replaces_a_directory(tmp_path, capsys, photo):
    victim = tmp_path / "victim.png"
    victim.mkdir()
    (victim / "thesis.txt").write_text("four years")
    run = run_cli(capsys, "filter", photo, "-k", "box:3", "-o", victim, "--force")
    assert run.code == 1
    assert run.err.count("\n") == 1 and "victim.png: is a directory" in run.err
    assert (victim / "thesis.txt").read_text() == "four years"


def test_a_zarr_output_replaces_a_zarr_store_but_no_other_directory(tmp_path, capsys):
    source = tmp_path / "in.zarr"
    zarr.create_array(str(source), data=np.random.default_rng(1).random((40, 40)), chunks=(16, 16))
    store = tmp_path / "out.zarr"
    zarr.create_array(str(store), data=np.zeros((3, 3)))
    run = run_cli(capsys, "filter", source, "-k", "box:3", "-o", store, "--force", "--chunk-size", "16")
    assert run.code == 0, run.err
    assert zarr.open_array(str(store)).shape == (40, 40)

    plain = tmp_path / "notes.zarr"
    plain.mkdir()
    (plain / "notes.txt").write_text("mine")
    run = run_cli(capsys, "filter", source, "-k", "box:3", "-o", plain, "--force")
    assert run.code == 1 and "not a Zarr store" in run.err
    assert (plain / "notes.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="not a Zarr store"):
        xcorr.dask.filter_to_zarr(source, plain, np.ones((3, 3)), overwrite=True)
    assert (plain / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("failure", "message"),
    [(errno.EROFS, "Read-only file system"), (errno.ENOSPC, "No space left on device"), (errno.EACCES, "Permission")],
)
def test_filesystem_failures_are_one_line(tmp_path, capsys, monkeypatch, photo, failure, message):
    def refuse(*args: object, **kwargs: object) -> str:
        raise OSError(failure, os.strerror(failure))

    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    run = run_cli(capsys, "filter", photo, "-k", "box:3", "-o", tmp_path / "out.png")
    assert run.code == 1
    assert run.err.startswith("xcorr: error: ") and run.err.count("\n") == 1
    assert message in run.err and "out.png" in run.err


def test_a_full_disk_while_encoding_leaves_nothing(tmp_path, capsys, monkeypatch, photo):
    def full(picture: images.Picture, path: Path) -> None:
        path.write_bytes(b"\x89PNG half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setitem(images._WRITERS, "png", full)
    run = run_cli(capsys, "filter", photo, "-k", "box:3", "-o", tmp_path / "out.png")
    assert run.code == 1 and "No space left on device" in run.err and run.err.count("\n") == 1
    assert not (tmp_path / "out.png").exists() and leftovers(tmp_path) == []


def test_out_dir_that_cannot_be_created_is_one_line(tmp_path, capsys, monkeypatch, photo):
    def refuse(self: Path, *args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    run = run_cli(capsys, "filter", photo, "-k", "box:3", "--out-dir", tmp_path / "ro" / "new")
    assert run.code == 1
    assert run.err.count("\n") == 1 and "Read-only file system" in run.err and "new" in run.err


def test_ctrl_c_is_one_line_and_exit_130_and_leaves_nothing(tmp_path):
    big = tmp_path / "big.npy"
    np.save(big, np.random.default_rng(2).random((3000, 3000)).astype(np.float32))
    script = "import sys; from xcorr.cli.app import main; print('ready', flush=True); sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    argv = ["filter", big, "-k", "gaussian:63", "--algo", "reference", "-o", tmp_path / "out.npy"]
    child = subprocess.Popen(
        [sys.executable, "-c", script, *map(str, argv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None and child.stdout.readline() == "ready\n"
    time.sleep(1.0)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=300)
    assert child.returncode == 130
    assert err == "xcorr: error: interrupted\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.npy"]


def test_messages_say_what_an_input_really_is(tmp_path, capsys):
    pickled = tmp_path / "objects.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    folder = tmp_path / "folder"
    folder.mkdir()
    run = run_cli(capsys, "filter", pickled, folder, "-k", "box:3", "--out-dir", tmp_path / "out")
    assert run.code == 1
    assert "objects.npy: .npy holds pickled Python objects" in run.err
    assert "folder: is a directory, not an image file" in run.err


def test_big_endian_arrays_are_filtered_like_native_ones(tmp_path, capsys):
    rng = np.random.default_rng(3)
    for dtype in (">f4", ">f8", ">u2"):
        native = (rng.random((30, 31)) * 1000).astype(np.dtype(dtype).newbyteorder("="))
        swapped = native.astype(dtype)
        kernel = np.arange(9.0).reshape(3, 3).astype(">f8")
        np.testing.assert_allclose(
            xcorr.filter2d(swapped, kernel, boundary="reflect"),
            scipy.ndimage.correlate(native.astype(np.float64), kernel.astype(np.float64), mode="mirror"),
            rtol=1e-5,
        )
        source = tmp_path / f"fits{dtype[1:]}.npy"
        np.save(source, swapped)
        run = run_cli(
            capsys, "filter", source, "-k", "box:3", "--dtype", "float64", "-o", tmp_path / "o.npy", "--force"
        )
        assert run.code == 0, run.err
        expected = reference_filter(native, np.ones((3, 3)) / 9)
        scale = 65535.0 if dtype == ">u2" else 1.0
        np.testing.assert_allclose(np.load(tmp_path / "o.npy"), expected / scale, rtol=1e-6)
