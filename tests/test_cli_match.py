"""``xcorr match``: templates cut from a picture are found where they were cut, with cv2's scores."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.cli_support import run_cli


def _scene(tmp_path, rng):
    smooth = cv2.GaussianBlur(rng.random((90, 120, 3)).astype(np.float32), (0, 0), 2.0)
    rgb = ((smooth - smooth.min()) / np.ptp(smooth) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "scene.png")
    return rgb


def test_two_templates_are_found_where_they_were_cut(tmp_path, capsys):
    rgb = _scene(tmp_path, np.random.default_rng(4))
    Image.fromarray(rgb[20:36, 30:52]).save(tmp_path / "a.png")
    Image.fromarray(rgb[50:66, 70:92]).save(tmp_path / "b.png")
    run = run_cli(capsys, "match", tmp_path / "scene.png", tmp_path / "a.png", tmp_path / "b.png", "--json")
    assert run.code == 0, run.err
    matches = {m["template"].rsplit("/", 1)[-1]: m for m in json.loads(run.out)["matches"]}
    assert (round(matches["a.png"]["row"]), round(matches["a.png"]["column"])) == (20, 30)
    assert (round(matches["b.png"]["row"]), round(matches["b.png"]["column"])) == (50, 70)
    expected = cv2.matchTemplate(rgb, rgb[20:36, 30:52], cv2.TM_CCOEFF_NORMED).max()
    assert matches["a.png"]["score"] == pytest.approx(expected, abs=1e-4)


def test_masks_top_and_plot(tmp_path, capsys):
    rgb = _scene(tmp_path, np.random.default_rng(5))
    grey = rgb.mean(axis=2).astype(np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    Image.fromarray(grey[10:30, 40:60]).save(tmp_path / "t.png")
    Image.fromarray(((np.arange(400).reshape(20, 20) % 3) > 0).astype(np.uint8) * 255).save(tmp_path / "m.png")
    ignore = np.full(grey.shape, 255, np.uint8)
    ignore[:5] = 0
    Image.fromarray(ignore).save(tmp_path / "ignore.png")
    run = run_cli(
        capsys, "match", tmp_path / "grey.png", tmp_path / "t.png", "--mask", tmp_path / "m.png",
        "--image-mask", tmp_path / "ignore.png", "--top", "3", "--min-distance", "5", "--plot", tmp_path / "p.png",
        "--json",
    )  # fmt: skip
    assert run.code == 0, run.err
    assert (tmp_path / "p.png").stat().st_size > 0
    matches = json.loads(run.out)["matches"]
    assert [m["rank"] for m in matches] == [1, 2, 3]
    assert (round(matches[0]["row"]), round(matches[0]["column"])) == (10, 40)
    assert (
        matches[0]["score"] == pytest.approx(1.0) and matches[0]["score"] >= matches[1]["score"] >= matches[2]["score"]
    )
    table = run_cli(capsys, "match", tmp_path / "grey.png", tmp_path / "t.png")
    assert table.code == 0 and "best placements" in table.out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--method", "nope"], "Invalid value"),
        (["--mask", "missing.png"], "missing.png"),
    ],
)
def test_bad_options_are_one_line(tmp_path, capsys, extra, message):
    rgb = _scene(tmp_path, np.random.default_rng(6))
    Image.fromarray(rgb[:10, :10]).save(tmp_path / "t.png")
    run = run_cli(
        capsys,
        "match",
        tmp_path / "scene.png",
        tmp_path / "t.png",
        *[tmp_path / e if e.endswith(".png") else e for e in extra],
    )
    assert run.code in (1, 2) and message in run.err and run.err.count("xcorr: error:") == 1


def test_a_grey_template_on_a_colour_image_is_refused(tmp_path, capsys):
    rgb = _scene(tmp_path, np.random.default_rng(8))
    Image.fromarray(rgb[:10, :10, 0]).save(tmp_path / "grey.png")
    run = run_cli(capsys, "match", tmp_path / "scene.png", tmp_path / "grey.png")
    assert run.code == 1 and "channels" in run.err
