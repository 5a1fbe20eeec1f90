"""The planner: plans print their reasons, use() steers, precision vetoes, tune() and first calls of close
estimates measure and remember."""

import dataclasses
import json
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import xcorr
from xcorr import planner, tuning
from xcorr.algo import get_algorithm


def test_plan_names_forward_and_gradient_products_with_reasons() -> None:
    plan = xcorr.plan((8, 64, 64, 64), (64, 1, 7, 7), padding=3, groups=64, requires_grad=True)
    text = str(plan)
    assert text.startswith(
        "plan for input 8x64x64x64, kernel 64x1x7x7, padding (3, 3, 3, 3), groups 64, float32 on cpu"
    )
    for line in ("forward:", "grad_input:", "grad_weight:", "cheapest by the cost model", "estimates:"):
        assert line in text
    assert plan.grad_input is not None and plan.grad_weight is not None
    assert {plan.forward.algorithm, plan.grad_input.algorithm, plan.grad_weight.algorithm} <= set(xcorr.algorithms())
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.forward = plan.grad_input  # type: ignore[misc]


def test_estimates_are_sorted_and_the_choice_is_the_cheapest() -> None:
    choice = xcorr.plan((1, 1, 512, 512), (1, 1, 15, 15), padding=7).forward
    costs = [cost for _, cost in choice.estimates]
    assert costs == sorted(costs) and choice.algorithm == choice.estimates[0][0]


@given(
    size=st.tuples(st.integers(1, 4096), st.integers(1, 4096)),
    kernel=st.tuples(st.integers(1, 99), st.integers(1, 99)),
    channels=st.integers(1, 8),
    dtype=st.sampled_from([torch.float16, torch.bfloat16, torch.float32, torch.float64]),
    grad=st.booleans(),
)
def test_auto_never_raises(
    size: tuple[int, int], kernel: tuple[int, int], channels: int, dtype: torch.dtype, grad: bool
) -> None:
    plan = xcorr.plan(
        (2, channels, *size), (channels, 1, *kernel), padding="same", groups=channels, dtype=dtype, requires_grad=grad
    )
    assert get_algorithm(plan.forward.algorithm).unsupported(plan.problem) is None


def test_use_prefers_an_algorithm_inside_the_block_only() -> None:
    shapes = ((1, 1, 256, 256), (1, 1, 3, 3))
    default = xcorr.plan(*shapes).forward.algorithm
    other = next(name for name in ("reference", "vendor") if name != default)
    with xcorr.use(other):
        chosen = xcorr.plan(*shapes).forward
        assert chosen.algorithm == other and chosen.reason == f"preferred by xcorr.use({other!r})"
        with xcorr.use(precision="exact"):
            assert xcorr.plan(*shapes).forward.algorithm == other  # nesting keeps the outer preference
    assert xcorr.plan(*shapes).forward.algorithm == default


def test_use_falls_back_where_the_preferred_algorithm_cannot_run() -> None:
    refusing = [
        n
        for n in xcorr.algorithms()
        if get_algorithm(n).unsupported(xcorr.plan((1, 1, 8, 8), (1, 1, 3, 3), dtype=torch.float16).problem)
    ]
    for name in refusing:
        with xcorr.use(name):
            assert xcorr.plan((1, 1, 8, 8), (1, 1, 3, 3), dtype=torch.float16).forward.algorithm != name


def test_exact_precision_vetoes_inexact_algorithms() -> None:
    inexact = {n for n in xcorr.algorithms() if not get_algorithm(n).exact}
    with xcorr.use(precision="exact"):
        choice = xcorr.plan((1, 1, 2048, 2048), (1, 1, 63, 63), padding=31).forward
    assert choice.algorithm not in inexact
    assert not inexact & {name for name, _ in choice.estimates}


def test_use_steers_real_calls_and_results_stay_exact() -> None:
    x, k = torch.randn(40, 40, dtype=torch.float64), torch.randn(5, 5, dtype=torch.float64)
    expected = torch.nn.functional.conv2d(x[None, None], k[None, None], padding=2)[0, 0]
    for name in xcorr.algorithms():
        with xcorr.use(name):
            torch.testing.assert_close(xcorr.filter2d(x, k), expected)


def test_tune_measures_remembers_on_disk_and_plans_with_it() -> None:
    shapes = ((1, 1, 96, 96), (1, 1, 5, 5))
    plan = xcorr.tune(*shapes, padding=2, repeats=1)
    assert plan.forward.reason == "measured fastest on this machine"
    stored = json.loads(tuning.cache_path().read_text())
    assert plan.forward.algorithm in stored["entries"].values()
    assert xcorr.plan(*shapes, padding=2).forward.reason == "measured fastest on this machine"


def test_tune_with_gradients_records_every_product() -> None:
    plan = xcorr.tune((2, 4, 24, 24), (4, 1, 3, 3), groups=4, requires_grad=True, repeats=1)
    assert plan.grad_input is not None and plan.grad_weight is not None
    assert {plan.forward.reason, plan.grad_input.reason, plan.grad_weight.reason} == {
        "measured fastest on this machine"
    }
    assert len(json.loads(tuning.cache_path().read_text())["entries"]) == 3


@pytest.mark.parametrize("content", ["{not json", '{"format": 99, "entries": {}}', '["a list"]', ""])
def test_corrupt_or_foreign_cache_files_are_ignored_and_rewritten(content: str) -> None:
    path = tuning.cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    assert xcorr.plan((1, 1, 64, 64), (1, 1, 3, 3)).forward.reason == "cheapest by the cost model"
    xcorr.tune((1, 1, 64, 64), (1, 1, 3, 3), repeats=1)
    assert json.loads(path.read_text())["format"] == 1


def test_a_winner_measured_with_another_thread_count_is_not_reused() -> None:
    threads = torch.get_num_threads()
    xcorr.tune((1, 1, 64, 64), (1, 1, 3, 3), repeats=1)
    torch.set_num_threads(threads + 1)
    try:
        assert xcorr.plan((1, 1, 64, 64), (1, 1, 3, 3)).forward.reason == "cheapest by the cost model"
    finally:
        torch.set_num_threads(threads)
    assert xcorr.plan((1, 1, 64, 64), (1, 1, 3, 3)).forward.reason == "measured fastest on this machine"


def _shapes_with_close_estimates() -> tuple[tuple[int, ...], tuple[int, ...], int]:
    """A 256x256 image and the first kernel size whose two cheapest estimates lie within MEASURE_FACTOR (searched
    for, not written down: the cost model's constants change)."""
    with xcorr.use(measure=False):
        for k in range(3, 128, 2):
            estimates = xcorr.plan((1, 1, 256, 256), (1, 1, k, k), padding=k // 2).forward.estimates
            if estimates[1][1] <= planner.MEASURE_FACTOR * estimates[0][1]:
                return (1, 1, 256, 256), (1, 1, k, k), k // 2
    raise AssertionError("no kernel size gives close estimates")


def test_close_estimates_are_measured_on_the_first_call_and_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    image, kernel, pad = _shapes_with_close_estimates()
    with xcorr.use(measure=True):
        first = xcorr.plan(image, kernel, padding=pad)
        assert first.forward.reason == "measured fastest on this machine"
        assert list(json.loads(tuning.cache_path().read_text())["entries"].values()) == [first.forward.algorithm]

        x, w = torch.randn(image), torch.randn(kernel)
        expected = F.conv2d(x, w, padding=pad)
        torch.testing.assert_close(xcorr.conv2d(x, w, padding=pad), expected, atol=1e-4, rtol=1e-4)

        def no_more_timing(*args: object) -> float:
            raise AssertionError("measured twice")

        monkeypatch.setattr(tuning, "time_once", no_more_timing)
        assert xcorr.plan(image, kernel, padding=pad).forward == first.forward
        torch.testing.assert_close(xcorr.conv2d(x, w, padding=pad), expected, atol=1e-4, rtol=1e-4)


def test_measuring_stays_off_where_asked_or_where_estimates_are_far_apart() -> None:
    image, kernel, pad = _shapes_with_close_estimates()
    with xcorr.use(measure=False):
        assert xcorr.plan(image, kernel, padding=pad).forward.reason == "cheapest by the cost model"
    with xcorr.use(measure=True):
        tiny = xcorr.plan((1, 1, 64, 64), (1, 1, 3, 3), padding=1).forward
        assert tiny.estimates[1][1] > planner.MEASURE_FACTOR * tiny.estimates[0][1]
        assert tiny.reason == "cheapest by the cost model"
    assert not tuning.cache_path().exists()


def test_measured_gradient_products_are_timed_as_the_backward_runs_them() -> None:
    """Every product of a layer is planned (measured or estimated) and training with the plan matches torch."""
    with xcorr.use(measure=True):
        plan = xcorr.plan((4, 8, 40, 40), (8, 8, 3, 3), padding=1, requires_grad=True)
        assert plan.grad_input is not None and plan.grad_weight is not None
        x = torch.randn(4, 8, 40, 40, requires_grad=True)
        w = torch.randn(8, 8, 3, 3, requires_grad=True)
        xcorr.conv2d(x, w, padding=1).square().sum().backward()
    assert x.grad is not None and w.grad is not None
    x2, w2 = x.detach().requires_grad_(), w.detach().requires_grad_()
    F.conv2d(x2, w2, padding=1).square().sum().backward()
    torch.testing.assert_close(x.grad, x2.grad, atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(w.grad, w2.grad, atol=1e-2, rtol=1e-4)


def test_a_registered_algorithm_is_planned_selectable_and_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """The extension point: one registration makes a new algorithm plannable (here the cheapest, by its own cost
    model), selectable with algo=, and vetoed by its own refusal; unregistering removes it."""
    from xcorr.algo.registry import Algorithm, register, unregister

    runs = []

    def run(x: torch.Tensor, w: torch.Tensor, problem: object) -> torch.Tensor:
        runs.append(problem)
        return get_algorithm("reference").run(x, w, problem)  # type: ignore[arg-type]

    toy = Algorithm(
        name="toy",
        run=run,
        unsupported=lambda p: "toy computes float64 only" if p.dtype != torch.float64 else None,
        cost=lambda p: 0.0,
        exact=True,
        summary="a test's plug-in",
    )
    register(toy)
    try:
        assert "toy" in xcorr.algorithms()
        x, w = torch.randn(1, 1, 12, 12, dtype=torch.float64), torch.randn(1, 1, 3, 3, dtype=torch.float64)
        assert xcorr.plan((1, 1, 12, 12), (1, 1, 3, 3), dtype=torch.float64).forward.algorithm == "toy"
        torch.testing.assert_close(xcorr.conv2d(x, w), F.conv2d(x, w))
        assert len(runs) == 1
        assert xcorr.plan((1, 1, 12, 12), (1, 1, 3, 3)).forward.algorithm != "toy"  # float32: vetoed
        with pytest.raises(xcorr.UnsupportedError, match="toy computes float64 only"):
            xcorr.conv2d(x.float(), w.float(), algo="toy")
    finally:
        unregister("toy")
    assert "toy" not in xcorr.algorithms()


def test_use_refuses_a_measure_that_is_not_a_bool() -> None:
    with pytest.raises(TypeError, match="measure must be True, False or None"), xcorr.use(measure="yes"):  # type: ignore[arg-type]
        pass


def test_a_layer_mixing_kernels_is_timed_whole_against_torchs_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A differentiable depthwise 7x7 call (a ConvNeXt shape, channels last) whose plan mixes torch's kernel with
    xcorr's (planted in the tuning cache: torch's forward and input gradient, direct's weight gradient), torch's
    estimates close: its first call times torch's forward + backward against the plan's and remembers the
    winner; later calls time nothing, and the results and gradients are torch's either way."""
    from xcorr.gradients import input_gradient_problem, weight_gradient_problem
    from xcorr.lowrank import known_rank
    from xcorr.problem import Problem

    shape, weight = (2, 64, 28, 28), (64, 1, 7, 7)
    torch.manual_seed(3)
    x = torch.randn(shape).contiguous(memory_format=torch.channels_last).requires_grad_()
    w = torch.randn(weight, requires_grad=True)
    dy = torch.randn(shape)
    forward = Problem(shape, weight, (1, 1), (3, 3, 3, 3), (1, 1), 64, torch.float32, "cpu", known_rank(w), True)
    for product, winner in (
        (forward, "vendor"),
        (input_gradient_problem(forward), "vendor"),
        (weight_gradient_problem(forward), "direct"),
    ):
        tuning.record(product, winner)
    timed: list[object] = []
    recorded: list[str] = []
    time_once, record = tuning.time_once, tuning.record

    def counted(run: Callable[[], object], device: str) -> float:
        timed.append(run)
        return time_once(run, device)

    def noted(problem: Problem, winner: str, kind: str = "") -> None:
        recorded.append(kind)
        record(problem, winner, kind)

    monkeypatch.setattr(tuning, "time_once", counted)
    monkeypatch.setattr(tuning, "record", noted)
    with xcorr.use(measure=True):
        xcorr.conv2d(x, w, padding=3, groups=64).backward(dy)
        assert recorded == ["layer"] and len(timed) == 8  # each layer step: a warm-up and three runs
        timed.clear()
        x.grad = w.grad = None
        y = xcorr.conv2d(x, w, padding=3, groups=64)
        y.backward(dy)
        assert timed == []
    x2, w2 = x.detach().requires_grad_(), w.detach().requires_grad_()
    expected = F.conv2d(x2, w2, padding=3, groups=64)
    expected.backward(dy)
    torch.testing.assert_close(y, expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(x.grad, x2.grad, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(w.grad, w2.grad, atol=1e-3, rtol=1e-4)


def test_8_and_16_bit_samples_are_measured_as_they_run() -> None:
    """A uint16 image's first call times each candidate as it would run on that image: an algorithm that reads
    samples (``run_extended``) on the uint16 samples, the others on a float copy, never on samples. A
    float32 image of the same size is a problem of its own, timed on floats. Results match the float64 reference."""
    import numpy as np
    import scipy.ndimage

    from xcorr.algo.registry import register, unregister

    calls: dict[str, list[torch.dtype]] = {"reader reads": [], "reader runs": [], "copier runs": []}
    direct = get_algorithm("direct")
    assert direct.run_extended is not None

    def recorded(name: str, kernel: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        def run(x: torch.Tensor, *rest: object) -> torch.Tensor:
            calls[name].append(x.dtype)
            return kernel(x, *rest)

        return run

    reader = dataclasses.replace(
        direct,
        name="reader",
        run=recorded("reader runs", direct.run),
        run_extended=recorded("reader reads", direct.run_extended),
    )
    register(reader)
    register(dataclasses.replace(direct, name="copier", run=recorded("copier runs", direct.run), run_extended=None))
    try:
        image = np.random.default_rng(0).integers(0, 65536, (512, 512), dtype=np.uint16)
        kernel = np.random.default_rng(1).random((5, 5), dtype=np.float32)
        with xcorr.use(measure=True):
            result = xcorr.filter2d(image, kernel, boundary="reflect")
            assert len(calls["reader reads"]) >= 2 and set(calls["reader reads"]) == {torch.uint16}  # timed, maybe run
            # (the winner decides what runs after: a float copy through the float plan if it cannot read samples)
            assert torch.uint16 not in calls["reader runs"] + calls["copier runs"]
            assert torch.float32 in calls["copier runs"]
            for seen in calls.values():
                seen.clear()
            xcorr.filter2d(image.astype(np.float32), kernel, boundary="reflect")
            assert len(calls["copier runs"]) >= 2 and len(calls["reader runs"] + calls["reader reads"]) >= 2
    finally:
        unregister("reader"), unregister("copier")
    expected = scipy.ndimage.correlate(image.astype(np.float64), kernel, mode="mirror")
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-6 * 65535)
