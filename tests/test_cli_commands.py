"""``xcorr fit``, ``plan``, ``demo``, ``bench`` and ``--version``: results checked against independent computations."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from PIL import Image

import xcorr
from tests.cli_support import leftovers, reference_filter, run_cli, run_script


def test_fit_recovers_kernel_and_bias_from_float_files(tmp_path, capsys):
    rng = np.random.default_rng(7)
    kernel = rng.standard_normal((3, 4))
    before = rng.random((30, 40))
    np.save(tmp_path / "before.npy", before)
    np.save(tmp_path / "after.npy", reference_filter(before, kernel, "valid") + 0.25)
    run = run_cli(
        capsys, "fit", tmp_path / "before.npy", tmp_path / "after.npy", "--size", "3x4", "--bias", "--json",
        "--save", tmp_path / "k.txt",
    )  # fmt: skip
    assert run.code == 0, run.err
    result = json.loads(run.out)
    np.testing.assert_allclose(result["kernel"], kernel, atol=1e-8)
    assert result["bias"] == pytest.approx(0.25, abs=1e-8)
    assert result["rms_residual"] < 1e-8
    assert result["alignment"] == "valid"
    np.testing.assert_allclose(np.loadtxt(tmp_path / "k.txt"), kernel, atol=1e-8)


def test_fit_finds_the_anchor_of_an_even_kernel_applied_by_scipy_ndimage(tmp_path, capsys):
    import scipy.ndimage

    rng = np.random.default_rng(8)
    kernel, before = rng.standard_normal((4, 4)), rng.random((40, 44))
    np.save(tmp_path / "before.npy", before)
    np.save(tmp_path / "after.npy", scipy.ndimage.correlate(before, kernel, mode="reflect"))
    run = run_cli(capsys, "fit", tmp_path / "before.npy", tmp_path / "after.npy", "--size", "4", "--json")
    assert run.code == 0, run.err
    result = json.loads(run.out)
    np.testing.assert_allclose(result["kernel"], kernel, atol=1e-8)
    assert result["anchor"] == [2, 2] and result["rms_residual"] < 1e-10
    table = run_cli(capsys, "fit", tmp_path / "before.npy", tmp_path / "after.npy", "--size", "4")
    assert "same alignment, anchor 2,2" in table.out
    forced = run_cli(
        capsys, "fit", tmp_path / "before.npy", tmp_path / "after.npy", "--size", "4", "--anchor", "1,1", "--json"
    )
    assert json.loads(forced.out)["anchor"] == [1, 1] and json.loads(forced.out)["rms_residual"] > 1e-3
    bad = run_cli(capsys, "fit", tmp_path / "before.npy", tmp_path / "after.npy", "--size", "4", "--anchor", "4,0")
    assert bad.code == 2 and "outside the 4x4 kernel" in bad.err


def test_fit_same_size_8bit_pair_with_table_and_plot(tmp_path, capsys):
    rng = np.random.default_rng(8)
    blur = np.array([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16
    before = rng.integers(0, 256, (60, 70), dtype=np.uint8)
    after = np.clip(np.rint(reference_filter(before, blur, "same")), 0, 255).astype(np.uint8)  # an editor's output
    Image.fromarray(before).save(tmp_path / "before.png")
    Image.fromarray(after).save(tmp_path / "after.png")
    args = ("fit", tmp_path / "before.png", tmp_path / "after.png", "--size", "3", "--plot", tmp_path / "fit.png")
    run = run_cli(capsys, *args, "--save", tmp_path / "k.npy")
    assert run.code == 0, run.err
    assert "fitted kernel" in run.out
    assert "residual RMS" in run.out
    assert "same alignment" in run.out
    np.testing.assert_allclose(np.load(tmp_path / "k.npy"), blur, atol=2e-3)  # after was rounded to 8 bits
    assert Image.open(tmp_path / "fit.png").format == "PNG"
    again = run_cli(capsys, *args)
    assert again.code == 1
    assert "already exists; pass --force" in again.err


def test_fit_gradient_descent_reports_progress(tmp_path, capsys):
    rng = np.random.default_rng(9)
    before = rng.random((16, 20))
    np.save(tmp_path / "x.npy", before)
    np.save(tmp_path / "y.npy", reference_filter(before, np.array([[-1.0, 1.0]]), "valid"))
    run = run_cli(
        capsys, "fit", tmp_path / "x.npy", tmp_path / "y.npy", "--size", "1x2", "--method", "gd", "--steps", 400
    )
    assert run.code == 0, run.err
    assert "epoch 40 loss:" in run.err
    assert "epoch 400 loss:" in run.err
    run = run_cli(
        capsys,
        "fit",
        tmp_path / "x.npy",
        tmp_path / "y.npy",
        "--size",
        "1x2",
        "--method",
        "gd",
        "--steps",
        400,
        "--json",
    )
    result = json.loads(run.out)
    np.testing.assert_allclose(result["kernel"], [[-1.0, 1.0]], atol=1e-3)


@pytest.mark.parametrize(
    ("after_shape", "size", "code", "message"),
    [
        (
            (9, 10),
            "3x3",
            1,
            "has (H, W) = (9, 10), but with --size 3x3 it must be BEFORE's (12, 12) ('same') or (10, 10)",
        ),
        ((12, 12), "13x3", 1, "is larger than BEFORE"),
        ((12, 12), "3by3", 2, "expected HxW with positive integers"),
        ((12, 12), "0x3", 2, "expected HxW with positive integers"),
    ],
)
def test_fit_bad_shapes(tmp_path, capsys, after_shape, size, code, message):
    np.save(tmp_path / "before.npy", np.zeros((12, 12)))
    np.save(tmp_path / "after.npy", np.zeros(after_shape))
    run = run_cli(
        capsys, "fit", tmp_path / "before.npy", tmp_path / "after.npy", "--size", size, "--save", tmp_path / "k.npy"
    )
    assert run.code == code, run.err
    assert message in run.err, run.err
    assert "Traceback" not in run.err
    assert not (tmp_path / "k.npy").exists()
    assert leftovers(tmp_path) == []


def test_plot_without_matplotlib_says_how_to_install(tmp_path, capsys, monkeypatch):
    np.save(tmp_path / "x.npy", np.zeros((5, 5)))
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    run = run_cli(capsys, "fit", tmp_path / "x.npy", tmp_path / "x.npy", "--size", "1", "--plot", tmp_path / "fit.png")
    assert run.code == 2
    assert "pip install 'xcorr[plot]'" in run.err
    assert not (tmp_path / "fit.png").exists()


def test_plan_json_and_text(capsys):
    run = run_cli(capsys, "plan", "2x3x64x48", "5x3x3x3", "--padding", "1", "--stride", "2", "--json")
    assert run.code == 0, run.err
    plan = json.loads(run.out)
    # torch's formula: (64 + 2 - 3) // 2 + 1 = 32, (48 + 2 - 3) // 2 + 1 = 24
    assert plan["output_shape"] == [2, 5, 32, 24]
    assert plan["weight_shape"] == [5, 3, 3, 3]
    assert plan["forward"]["algorithm"] in xcorr.algorithms()
    assert plan["grad_input"] is None
    run = run_cli(capsys, "plan", "512x512", "7x7", "--grad")
    assert run.code == 0
    assert "forward:" in run.out
    assert "grad_weight:" in run.out
    bad = run_cli(capsys, "plan", "512by512", "3x3")
    assert bad.code == 2
    assert "expected integers joined by 'x'" in bad.err


def test_demo_prints_the_notebook_and_writes_pictures(tmp_path, capsys):
    run = run_cli(capsys, "demo", "--out", tmp_path / "demo")
    assert run.code == 0, run.err
    assert "epoch 10 loss: 0.0127448" in run.out
    assert "tensor([[19., 25.]," in run.out
    names = sorted(p.name for p in (tmp_path / "demo").iterdir())
    assert names == ["edges.png", "input.png", "kernels.png", "loss.png", "matches.png"]
    assert "template 1 (cut at (40, 60)) found at (40, 60), score 1.000" in run.err + run.out
    assert "template 2 (cut at (110, 170)) found at (110, 170), score 1.000" in run.err + run.out
    assert all(Image.open(tmp_path / "demo" / n).format == "PNG" for n in names)
    again = run_cli(capsys, "demo", "--out", tmp_path / "demo", "-q")
    assert again.code == 1
    assert "pass --force" in again.err


def test_bench_runs_the_checkout_module_or_says_how(tmp_path, capsys, monkeypatch):
    from xcorr.cli import bench_command

    monkeypatch.setattr(bench_command, "find_bench_root", lambda: None)
    run = run_cli(capsys, "bench", "--quick")
    assert run.code == 2
    assert "python -m bench --quick" in run.err
    monkeypatch.undo()

    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "__main__.py").write_text("import sys\nprint('bench args', sys.argv[1:])\nsys.exit(3)\n")
    monkeypatch.chdir(tmp_path)
    assert run_cli(capsys, "bench", "--quick", "--repeats", "2").code == 3


def test_console_script_version_and_usage_error():
    version = run_script("--version")
    assert version.code == 0
    assert version.out.strip() == f"xcorr {xcorr.__version__}"
    usage = run_script("filter", "--no-such-option")
    assert usage.code == 2
    assert usage.err.startswith("xcorr: error:")
    assert "Traceback" not in usage.err
