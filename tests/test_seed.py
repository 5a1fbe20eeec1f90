"""The seed notebook, cell by cell, through xcorr: the values it printed are asserted here."""

import numpy as np
import pytest
import torch

import xcorr
from xcorr import demo


def test_cell_6_corr2d_of_a_3x3_ramp() -> None:
    x = torch.Tensor([[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    k = torch.Tensor([[0, 1], [2, 3]])
    assert torch.equal(xcorr.corr2d(x, k), torch.tensor([[19.0, 25.0], [37.0, 43.0]]))


def test_cell_7_conv2d_layer_with_the_typo_fixed() -> None:
    layer = xcorr.nn.Conv2D((1, 2))
    assert layer.weight.shape == (1, 2)
    assert torch.equal(layer.bias.data, torch.zeros(1))
    x = torch.rand(6, 8)
    expected = torch.nn.functional.conv2d(x[None, None], layer.weight[None, None])[0, 0] + layer.bias
    torch.testing.assert_close(layer(x), expected)


def band_image() -> torch.Tensor:
    x = torch.ones(6, 8)
    x[:, 2:6] = 0
    return x


def test_cells_9_to_11_edge_detection() -> None:
    x = band_image()
    k = torch.tensor([[-1.0, 1.0]])
    row = torch.tensor([0.0, -1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    assert torch.equal(xcorr.corr2d(x, k), row.expand(6, 7))
    assert torch.equal(xcorr.corr2d(x.t(), k), torch.zeros(8, 5))


NOTEBOOK_LOSSES = [
    13.615275382995605,
    2.3015711307525635,
    0.3932284712791443,
    0.06887634843587875,
    0.012744824402034283,
]


def test_cells_14_to_16_learning_the_kernel_back() -> None:
    lines: list[str] = []
    result = demo.run(echo=lines.append)
    printed = [float(line.split(": ")[1]) for line in lines if line.startswith("epoch")]
    assert [int(line.split()[1]) for line in lines if line.startswith("epoch")] == [2, 4, 6, 8, 10]
    assert printed == pytest.approx(NOTEBOOK_LOSSES, rel=1e-6)
    torch.testing.assert_close(result.learned_kernel, torch.tensor([[-0.9855, 0.9762]]), atol=5e-5, rtol=0)
    assert "tensor([[[[-0.9855,  0.9762]]]])" in lines
    row = torch.tensor([-0.0093, -0.9855, 0.0, 0.0, 0.0, 0.9762, -0.0093])
    torch.testing.assert_close(result.learned_edges, row.expand(6, 7), atol=5e-5, rtol=0)


def test_notebook_loop_written_with_xcorr_layers_matches_torch_layers() -> None:
    """The notebook's cell 14 verbatim, once with torch.nn.LazyConv2d and once with xcorr's: same losses."""

    def train(layer_class: type) -> list[float]:
        torch.manual_seed(7)
        conv2d = layer_class(1, kernel_size=(1, 2), bias=False)
        x, y = (
            band_image().reshape(1, 1, 6, 8),
            xcorr.corr2d(band_image(), torch.tensor([[-1.0, 1.0]])).reshape(1, 1, 6, 7),
        )
        losses = []
        for _ in range(10):
            l = (conv2d(x) - y) ** 2
            conv2d.zero_grad()
            l.sum().backward()
            conv2d.weight.data[:] -= 3e-2 * conv2d.weight.grad
            losses.append(l.sum().item())
        return losses

    assert train(xcorr.nn.LazyConv2d) == pytest.approx(train(torch.nn.LazyConv2d), rel=1e-5)


def test_cells_21_to_23_diagonal_edges() -> None:
    x = torch.tril(torch.ones(6, 8))
    k = torch.tensor([[-1.0, 1.0]])
    assert torch.equal(xcorr.corr2d(x, k), -torch.eye(6, 7))
    assert torch.equal(xcorr.corr2d(x.T, k), torch.from_numpy(np.eye(8, 5, k=-1, dtype=np.float32)))
    assert torch.equal(xcorr.corr2d(x, k.T), torch.from_numpy(np.eye(5, 8, k=1, dtype=np.float32)))


def test_demo_fits_the_edge_kernel_in_closed_form() -> None:
    result = demo.run(echo=lambda line: None)
    torch.testing.assert_close(result.fitted_kernel, torch.tensor([[-1.0, 1.0]]))
    assert result.losses == sorted(result.losses, reverse=True)
