"""Smoke test of the benchmark harness (bench/): the whole table on tiny shapes, in this process.

No timing is asserted. What is asserted: every case is in the report, xcorr ran on each, and every xcorr output
(``algo="auto"`` and every forced algorithm) equals every peer's output (OpenCV, SciPy, torch, fft-conv-pytorch)
to float tolerance; so the harness compares like with like, and xcorr agrees with independent libraries.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bench import cases, report, suite
from bench.__main__ import main
from bench.peers import compute_dtype
from bench.timing import Policy

ONE_RUN = Policy(target_s=0.0, min_runs=1, max_runs=1, slow_s=10.0, max_estimate_s=10.0)
# max |xcorr - peer| / max |peer|: FFT-based contenders carry errors of about eps * sum |w| * max |x|.
TOLERANCE = {"float32": 1e-4, "float64": 1e-10}


@pytest.fixture(scope="module")
def results() -> list[suite.CaseResult]:
    return suite.run(cases.table(cases.TINY), ONE_RUN, threads=1, seed=0, log=lambda message: None)


def test_every_case_is_reported_and_xcorr_ran(results: list[suite.CaseResult]) -> None:
    text = report.markdown({"cpu": "test"}, results, None)
    for case in cases.table(cases.TINY):
        assert f"| {case.name} |" in text
    for result in results:
        assert result.outcomes[suite.XCORR].status == "ok", result.outcomes[suite.XCORR].note
        assert any(name.startswith("xcorr[") for name in result.outcomes), "no forced algorithm was timed"


def test_every_xcorr_output_equals_every_peer_output(results: list[suite.CaseResult]) -> None:
    for result in results:
        peers = {name for name, o in result.outcomes.items() if not suite.is_xcorr(name) and o.status == "ok"}
        peers.discard(cases.COPY)
        assert peers, f"{result.case.name}: no peer ran"
        for ours, differences in result.differences.items():
            assert set(differences) == peers
            for peer, difference in differences.items():
                tolerance = TOLERANCE[compute_dtype(peer, result.case)]
                assert difference <= tolerance, (result.case.name, ours, peer, difference)


def test_relative_difference_sees_a_wrong_value_and_a_wrong_shape() -> None:
    reference = [np.array([[1.0, -4.0]])]
    assert suite.relative_difference([np.array([[1.0, -3.0]])], reference) == pytest.approx(0.25)
    assert suite.relative_difference([np.zeros((2, 1))], reference) == np.inf


def test_gaussian_factors_reproduce_the_kernel() -> None:
    case = next(c for c in cases.table(cases.TINY) if c.gaussian)
    inputs = cases.make_inputs(case, seed=0)
    assert inputs.factors is not None
    np.testing.assert_allclose(np.outer(*inputs.factors), inputs.kernel, rtol=1e-6)
    assert inputs.kernel.sum() == pytest.approx(1.0, rel=1e-6)


def test_command_line_writes_json_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    json_path, plot_path = tmp_path / "run.json", tmp_path / "bench.png"
    args = [
        "--quick",
        "--threads",
        "1",
        "--only",
        "gaussian 192x192 k7",
        "--json",
        str(json_path),
        "--plot",
        str(plot_path),
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "| gaussian 192x192 k7 |" in out
    data = json.loads(json_path.read_text())
    assert [c["case"]["name"] for c in data["cases"]] == ["gaussian 192x192 k7"]
    assert data["cases"][0]["outcomes"]["xcorr"]["status"] == "ok"
    assert data["machine"]["threads"]["torch"] == 1
    assert plot_path.stat().st_size > 0
