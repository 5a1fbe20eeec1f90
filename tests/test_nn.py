"""Layers: drop-in for torch's, weights loading both ways, lazy materialisation, convert()."""

import pytest
import torch

import xcorr


def test_conv2d_is_a_drop_in_for_torch() -> None:
    torch.manual_seed(0)
    ours = xcorr.nn.Conv2d(3, 6, 5, stride=2, padding=2, dilation=1, groups=3, padding_mode="reflect")
    theirs = torch.nn.Conv2d(3, 6, 5, stride=2, padding=2, dilation=1, groups=3, padding_mode="reflect")
    theirs.load_state_dict(ours.state_dict())
    ours.load_state_dict(theirs.state_dict())
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    assert isinstance(ours, torch.nn.Conv2d)
    x = torch.randn(2, 3, 17, 19)
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)
    assert "algo='auto'" in repr(ours)


def test_conv2d_trains_like_torch() -> None:
    torch.manual_seed(1)
    ours, theirs = xcorr.nn.Conv2d(2, 2, 3, padding="same").double(), torch.nn.Conv2d(2, 2, 3, padding="same").double()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(4, 2, 10, 10, dtype=torch.float64)
    for layer in (ours, theirs):
        layer(x).square().sum().backward()
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad)


@pytest.mark.parametrize("algo", xcorr.algorithms())
def test_forced_algorithm_layer(algo: str) -> None:
    layer = xcorr.nn.Conv2d(1, 1, 3, padding=1, algo=algo).double()
    with torch.no_grad():  # a rank-1 kernel, which every algorithm (separable passes included) can run
        layer.weight.copy_(torch.from_numpy(xcorr.kernels.gaussian(3, 0.8)))
    x = torch.randn(1, 1, 12, 12, dtype=torch.float64)
    expected = torch.nn.functional.conv2d(x, layer.weight, layer.bias, padding=1)
    torch.testing.assert_close(layer(x), expected, rtol=1e-8, atol=1e-8)


def test_lazy_conv2d_infers_channels_and_becomes_xcorr_conv2d() -> None:
    layer = xcorr.nn.LazyConv2d(4, kernel_size=3, algo="reference")
    y = layer(torch.randn(2, 5, 8, 8))
    assert y.shape == (2, 4, 6, 6)
    assert type(layer) is xcorr.nn.Conv2d
    assert layer.in_channels == 5 and layer.algo == "reference"
    x = torch.randn(1, 5, 8, 8)
    torch.testing.assert_close(layer(x), torch.nn.functional.conv2d(x, layer.weight, layer.bias))


def test_convert_swaps_every_conv2d_in_place_sharing_weights() -> None:
    torch.manual_seed(2)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Sequential(torch.nn.Conv2d(4, 2, 3))
    )
    x = torch.randn(1, 1, 12, 12)
    expected = model(x)
    weight = model[0].weight
    converted = xcorr.convert(model, algo="vendor")
    assert converted is model and model[0].weight is weight
    assert type(model[0]) is xcorr.nn.Conv2d and type(model[2][0]) is xcorr.nn.Conv2d
    assert model[2][0].algo == "vendor"
    torch.testing.assert_close(model(x), expected)


def test_notebook_conv2d_layer_is_corr2d_plus_bias() -> None:
    layer = xcorr.nn.Conv2D((2, 3))
    with torch.no_grad():
        layer.bias.fill_(0.5)
    x = torch.randn(5, 7)
    expected = torch.nn.functional.conv2d(x[None, None], layer.weight[None, None])[0, 0] + 0.5
    torch.testing.assert_close(layer(x), expected)
    layer(x).sum().backward()
    assert layer.weight.grad is not None and layer.bias.grad == 4 * 5  # one per output pixel


def test_a_layer_the_planner_gives_to_torch_runs_torchs_kernel_until_the_plan_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A dense 3x3 layer plans as torch's kernel throughout: called in a loop it runs torch's conv2d (same values
    and gradients as torch's layer); inside ``use("direct")`` the remembered decision is not reused."""
    torch.manual_seed(1)
    ours, theirs = xcorr.nn.Conv2d(32, 32, 3, padding=1), torch.nn.Conv2d(32, 32, 3, padding=1)
    theirs.load_state_dict(ours.state_dict())
    calls = []
    conv2d = torch.nn.functional.conv2d

    def counted(*args: object, **kwargs: object) -> torch.Tensor:
        calls.append(1)
        return conv2d(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(torch.nn.functional, "conv2d", counted)
    x = torch.randn(4, 32, 20, 20, requires_grad=True)
    for _ in range(3):
        y = ours(x)
        y.square().sum().backward()
    assert len(calls) == 3
    expected = theirs(x)
    torch.testing.assert_close(y, expected)
    calls.clear()
    with xcorr.use("direct"):
        torch.testing.assert_close(ours(x), expected, rtol=1e-4, atol=1e-4)
    assert calls == []


def test_a_layer_whose_settings_change_after_a_call_computes_with_the_new_ones() -> None:
    """A layer's remembered route holds its geometry: changing padding, stride or dilation afterwards (as
    torch allows) must give torch's result for the new settings, not the remembered ones."""
    torch.manual_seed(2)
    ours, theirs = xcorr.nn.Conv2d(8, 8, 3, padding=1), torch.nn.Conv2d(8, 8, 3, padding=1)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 8, 12, 12)
    for _ in range(2):
        torch.testing.assert_close(ours(x), theirs(x))
    for layer in (ours, theirs):
        layer.padding, layer.stride, layer.dilation = (2, 0), (2, 1), (1, 2)
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-4, atol=1e-4)
