"""The seed notebook, cell by cell, through xcorr: what ``xcorr demo`` and ``make demo`` run.

The notebook trained its ``LazyConv2d`` from an unseeded random start. That start was recovered from the losses
it printed (the initial weight whose ten float32 gradient steps reproduce every printed loss to the last
digit), so the demo prints the notebook's numbers rather than a fresh random run's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from xcorr import kernels
from xcorr.fit import fit_kernel
from xcorr.functional import corr2d
from xcorr.nn import Conv2D, LazyConv2d

NOTEBOOK_INITIAL_WEIGHT = (0.616791307926178, -0.7031329274177551)
"""The notebook's random initial (1, 2) kernel, recovered from its printed losses."""

LEARNING_RATE = 3e-2
STEPS = 10


@dataclass(frozen=True)
class DemoResult:
    """What the demo computed, for pictures and tests. Tensors are float32, detached.

    Attributes:
        image: (6, 8) the notebook's image with a dark band; ``edges`` (6, 7) its edge map with ``[[-1, 1]]``.
        learned_kernel: (1, 2) kernel after the notebook's gradient descent; ``losses``: loss before each step.
        learned_edges: (6, 7) the learned layer's output on ``image``.
        fitted_kernel: (1, 2) closed-form least-squares kernel from the same pair.
        triangle: (6, 8) ``tril(ones)``; ``triangle_edges`` (6, 7), ``transposed_edges`` (8, 5),
            ``vertical_edges`` (5, 8): the last three cells.
    """

    image: torch.Tensor
    edges: torch.Tensor
    learned_kernel: torch.Tensor
    losses: list[float]
    learned_edges: torch.Tensor
    fitted_kernel: torch.Tensor
    triangle: torch.Tensor
    triangle_edges: torch.Tensor
    transposed_edges: torch.Tensor
    vertical_edges: torch.Tensor


def run(echo: Callable[[str], object] = print) -> DemoResult:
    """Reproduce every notebook cell through xcorr, printing each through ``echo``; return the results.

    Example:
        >>> result = run(echo=lambda line: None)
        >>> [round(v, 4) for v in result.learned_kernel.flatten().tolist()]
        [-0.9855, 0.9762]
    """

    def cell(title: str, value: object) -> None:
        echo(f"\n>>> {title}")
        echo(str(value))

    x = torch.tensor([[0.0, 1, 2], [3, 4, 5], [6, 7, 8]])
    k = torch.tensor([[0.0, 1], [2, 3]])
    cell("corr2d(x, k)", corr2d(x, k))

    layer = Conv2D((1, 2))
    cell(
        "Conv2D((1, 2))(torch.ones(6, 8)).shape  # the notebook's layer, torch.zeors typo fixed",
        layer(torch.ones(6, 8)).shape,
    )

    image = torch.ones(6, 8)
    image[:, 2:6] = 0
    cell("x = torch.ones(6, 8); x[:, 2:6] = 0; x", image)
    edge = torch.tensor(kernels.edge(), dtype=torch.float32)
    edges = corr2d(image, edge)
    cell("y = corr2d(x, k) with k = [[-1., 1.]]", edges)
    cell("corr2d(x.t(), k)", corr2d(image.t(), edge))

    conv = LazyConv2d(1, kernel_size=(1, 2), bias=False)
    x4, y4 = image.reshape(1, 1, 6, 8), edges.reshape(1, 1, 6, 7)
    conv(x4)  # materialise, then start from the notebook's (recovered) random weight
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(NOTEBOOK_INITIAL_WEIGHT).reshape(1, 1, 1, 2))
    echo("\n>>> learn the kernel back: LazyConv2d(1, kernel_size=(1, 2), bias=False), lr = 3e-2")
    losses = []
    for i in range(STEPS):
        loss = ((conv(x4) - y4) ** 2).sum()
        conv.zero_grad()
        loss.backward()
        with torch.no_grad():
            if conv.weight.grad is not None:
                conv.weight.sub_(LEARNING_RATE * conv.weight.grad)
        losses.append(loss.item())
        if (i + 1) % 2 == 0:
            echo(f"epoch {i + 1} loss: {losses[-1]}")
    cell("conv2d.weight.data", conv.weight.data)
    learned_edges = conv(x4).detach()
    cell("conv2d(x)", conv(x4))

    fitted = fit_kernel(image, edges, (1, 2))
    cell("xcorr.fit_kernel(x, y, (1, 2)).kernel  # closed-form least squares", fitted.kernel)

    triangle = torch.tril(torch.ones(6, 8))
    triangle_edges = corr2d(triangle, edge)
    cell("x = torch.tril(torch.ones(6, 8)); y = corr2d(x, k); x, y", (triangle, triangle_edges))
    transposed = corr2d(triangle.T, edge)
    cell("corr2d(x.T, k)", transposed)
    vertical = corr2d(triangle, edge.T)
    cell("corr2d(x, k.T)", vertical)

    return DemoResult(
        image=image,
        edges=edges.detach(),
        learned_kernel=conv.weight.detach()[0, 0],
        losses=losses,
        learned_edges=learned_edges[0, 0],
        fitted_kernel=torch.as_tensor(fitted.kernel).detach(),
        triangle=triangle,
        triangle_edges=triangle_edges.detach(),
        transposed_edges=transposed.detach(),
        vertical_edges=vertical.detach(),
    )
