"""``torch.ops.xcorr.correlate`` as a first-class PyTorch operator: compile, export, trace, torch.func, autocast,
channels_last, fork and empty batches, each checked against torch's own conv2d."""

from __future__ import annotations

import copy
import multiprocessing
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import xcorr

ALGORITHMS = xcorr.algorithms()


def small_cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 5, padding=2, groups=8, padding_mode="reflect"),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 4, 3, stride=2, dilation=2, padding=2),
    )


@pytest.fixture
def models() -> tuple[torch.nn.Module, torch.nn.Module]:
    plain = small_cnn()
    return plain, xcorr.convert(copy.deepcopy(plain))


@pytest.mark.parametrize("algo", ALGORITHMS)
@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "padding", "dilation", "groups"),
    [
        ((2, 3, 11, 13), (4, 3, 3, 3), [1, 1], [1, 1, 1, 1], [1, 1], 1),
        ((1, 4, 12, 10), (4, 1, 5, 5), [2, 1], [2, 1, 0, 3], [1, 1], 4),
        ((1, 2, 14, 14), (2, 1, 3, 2), [1, 2], [0, 0, 0, 0], [2, 1], 2),
    ],
)
def test_opcheck_over_the_registry(algo, x_shape, w_shape, stride, padding, dilation, groups):
    """Schema, fake implementation, autograd registration and AOT tracing (static and dynamic shapes)."""
    x = torch.randn(x_shape, dtype=torch.float64, requires_grad=True)
    if algo == "separable":  # it runs rank-1 kernels: outer products of a column and a row
        columns, rows = torch.randn(*w_shape[:3], 1, dtype=torch.float64), torch.randn(*w_shape[:2], 1, w_shape[3])
        w = (columns * rows.to(torch.float64)).requires_grad_()
    else:
        w = torch.randn(w_shape, dtype=torch.float64, requires_grad=True)
    torch.library.opcheck(torch.ops.xcorr.correlate.default, (x, w, stride, padding, dilation, groups, algo))


def test_compile_fullgraph_has_no_graph_break_and_matches_eager(models):
    plain, converted = models
    x = torch.randn(2, 3, 20, 20, requires_grad=True)
    explained = torch._dynamo.explain(converted)(x)
    assert explained.graph_break_count == 0
    compiled = torch.compile(converted, fullgraph=True)
    y = compiled(x)
    y.square().sum().backward()
    x_ref = x.detach().clone().requires_grad_()
    y_ref = plain(x_ref)
    y_ref.square().sum().backward()
    torch.testing.assert_close(y, y_ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(x.grad, x_ref.grad, atol=1e-4, rtol=1e-4)
    for mine, theirs in zip(converted.parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(mine.grad, theirs.grad, atol=1e-3, rtol=1e-4)


def test_export_produces_a_program_that_runs_and_matches(models):
    plain, converted = models
    program = torch.export.export(converted, (torch.randn(2, 3, 20, 20),))
    assert any("xcorr.correlate" in str(node.target) for node in program.graph.nodes)
    x = torch.randn(2, 3, 20, 20)
    torch.testing.assert_close(program.module()(x), plain(x), atol=1e-4, rtol=1e-4)


def test_jit_trace_records_the_operator(models):
    plain, converted = models
    x = torch.randn(1, 3, 16, 16)
    traced = torch.jit.trace(converted, (x,))
    assert "xcorr::correlate" in str(traced.inlined_graph)
    torch.testing.assert_close(traced(x), plain(x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("algo", ["auto", "direct", "fft", "reference"])
def test_torch_func_grad_vmap_and_jacrev_match_torch(algo):
    torch.manual_seed(1)
    x, w = torch.randn(2, 3, 10, 11, dtype=torch.float64), torch.randn(4, 3, 3, 3, dtype=torch.float64)

    def mine(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return xcorr.conv2d(x, w, padding=1, algo=algo)

    def theirs(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, w, padding=1)

    for argnums in (0, 1):
        torch.testing.assert_close(
            torch.func.grad(lambda *a: mine(*a).sin().sum(), argnums=argnums)(x, w),
            torch.func.grad(lambda *a: theirs(*a).sin().sum(), argnums=argnums)(x, w),
        )
    xs, ws = torch.randn(3, *x.shape, dtype=x.dtype), torch.randn(3, *w.shape, dtype=w.dtype)
    for dims in ((0, None), (None, 0), (0, 0)):
        args = (xs if dims[0] == 0 else x, ws if dims[1] == 0 else w)
        torch.testing.assert_close(torch.func.vmap(mine, dims)(*args), torch.func.vmap(theirs, dims)(*args))
    small = x[:1, :, :5, :6]
    torch.testing.assert_close(
        torch.func.jacrev(mine, argnums=1)(small, w), torch.func.jacrev(theirs, argnums=1)(small, w)
    )


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_follows_torch_convolution_policy(models, dtype):
    plain, converted = models
    x = torch.randn(2, 3, 20, 20)
    with torch.autocast("cpu", dtype=dtype):
        mine, theirs = converted(x), plain(x)
        assert xcorr.filter2d(x[0, 0], torch.ones(3, 3)).dtype == dtype
    assert mine.dtype == theirs.dtype == dtype
    torch.testing.assert_close(mine.float(), theirs.float(), atol=0.1, rtol=0.05)
    x64 = torch.randn(1, 1, 8, 8, dtype=torch.float64)
    with torch.autocast("cpu", dtype=dtype):
        assert xcorr.conv2d(x64, torch.ones(1, 1, 3, 3, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_channels_last_in_gives_channels_last_out(algo):
    x = torch.randn(2, 4, 12, 12).contiguous(memory_format=torch.channels_last)
    w = torch.randn(4, 1, 3, 3)
    y = xcorr.conv2d(x, w, padding=1, groups=4, algo=algo if algo != "separable" else "auto")
    expected = F.conv2d(x, w, padding=1, groups=4)
    assert y.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y, expected, atol=1e-4, rtol=1e-4)


def _direct_call() -> float:
    """A two-thread direct call on NumPy data (torch's own parallel ops hang in a fork child with GNU OpenMP, so
    the child's work must be xcorr's alone for the test to be about xcorr)."""
    torch.set_num_threads(2)
    x = np.random.default_rng(0).random((512, 512), dtype=np.float32)
    return float(xcorr.filter2d(x, np.ones((7, 7), np.float32), algo="direct").sum())


def _in_child(queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    queue.put(_direct_call())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_runs_multithreaded_calls_after_the_parent_did():
    expected = _direct_call()  # the parent's pool now has threads, which a fork does not copy
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_in_child, args=(queue,))
    child.start()
    child.join(timeout=120)
    if child.exitcode is None:
        child.kill()
    assert child.exitcode == 0, "the child hung or failed"
    assert queue.get(timeout=5) == pytest.approx(expected, rel=1e-6)


class _Images(torch.utils.data.Dataset):  # type: ignore[type-arg]
    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> torch.Tensor:
        x = torch.full((1, 64, 64), float(index))
        return xcorr.filter2d(x, torch.ones(5, 5), algo="direct")


def test_dataloader_workers_with_the_default_start_method():
    _direct_call()
    loader = torch.utils.data.DataLoader(_Images(), batch_size=2, num_workers=2, timeout=120)
    batches = list(loader)
    assert [tuple(b.shape) for b in batches] == [(2, 1, 64, 64), (2, 1, 64, 64)]
    assert float(batches[1][1, 0, 32, 32]) == pytest.approx(3.0 * 25)


def test_an_empty_batch_gives_empty_outputs_and_zero_gradients():
    layer, reference = xcorr.nn.Conv2d(3, 4, 3), torch.nn.Conv2d(3, 4, 3)
    reference.load_state_dict(layer.state_dict())
    x, x_ref = (torch.zeros(0, 3, 10, 10, requires_grad=True) for _ in range(2))
    y, y_ref = layer(x), reference(x_ref)
    assert y.shape == y_ref.shape == (0, 4, 8, 8)
    y.sum().backward()
    y_ref.sum().backward()
    assert x.grad is not None and x.grad.shape == (0, 3, 10, 10)
    torch.testing.assert_close(layer.weight.grad, reference.weight.grad)
    torch.testing.assert_close(layer.bias.grad, reference.bias.grad)
    plan = xcorr.plan((0, 3, 10, 10), (4, 3, 3, 3), requires_grad=True)
    assert "empty" in plan.forward.reason and plan.grad_weight is not None
