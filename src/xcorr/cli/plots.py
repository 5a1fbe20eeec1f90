"""Pictures for ``xcorr fit --plot`` and ``xcorr demo --out``, drawn with matplotlib (optional, imported lazily)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xcorr.cli.errors import UsageError
from xcorr.cli.safe_write import atomic_output

PLOT_SUFFIXES = (".png", ".svg", ".pdf")
INSTALL_HINT = "pictures need matplotlib: pip install 'xcorr[plot]' (or: pip install matplotlib)"


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend.

    Raises:
        UsageError: matplotlib is not installed; the message says how to install it.
    """
    try:
        import matplotlib
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def check_plot_path(path: Path) -> None:
    """Fail before any work if ``path`` has no picture suffix or matplotlib is missing."""
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise UsageError(f"{path}: pictures are written as {', '.join(PLOT_SUFFIXES)}")
    pyplot()


def _displayable(planes: np.ndarray) -> tuple[np.ndarray, str | None]:
    """(3, H, W) -> an RGB image clipped to [0, 1]; anything else -> its first (H, W) plane in grey."""
    if planes.ndim == 3 and planes.shape[0] == 3:
        return np.clip(np.moveaxis(planes, 0, -1), 0.0, 1.0), None
    return planes.reshape(-1, *planes.shape[-2:])[0], "gray"


def _kernel_axes(ax: Any, kernel: np.ndarray, title: str) -> None:
    limit = float(np.abs(kernel).max()) or 1.0
    image = ax.imshow(kernel, cmap="RdBu_r", vmin=-limit, vmax=limit)
    if kernel.size <= 49:
        for (i, j), value in np.ndenumerate(kernel):
            colour = "white" if abs(value) > 0.6 * limit else "black"
            ax.text(j, i, f"{value:.3g}", ha="center", va="center", fontsize=9, color=colour)
    ax.set_title(title)
    ax.set_xticks(range(kernel.shape[1]))
    ax.set_yticks(range(kernel.shape[0]))
    ax.figure.colorbar(image, ax=ax, shrink=0.8)


def _save(figure: Any, path: Path) -> None:
    plt = pyplot()
    with atomic_output(path) as staged:
        figure.savefig(staged, format=path.suffix.lower().lstrip("."), dpi=100, bbox_inches="tight")
    plt.close(figure)


def save_fit_figure(
    path: Path, kernel: np.ndarray, before: np.ndarray, after: np.ndarray, residual: np.ndarray
) -> None:
    """Four panels: the fitted ``kernel`` (h, w), ``before`` (..., H, W), ``after`` and ``residual`` (..., Ho, Wo)."""
    plt = pyplot()
    figure, axes = plt.subplots(1, 4, figsize=(16, 4))
    _kernel_axes(axes[0], kernel, f"fitted kernel {kernel.shape[0]}x{kernel.shape[1]}")
    for ax, planes, title in ((axes[1], before, "before"), (axes[2], after, "after (fitted region)")):
        image, cmap = _displayable(planes)
        ax.imshow(image, cmap=cmap)
        ax.set_title(title)
        ax.axis("off")
    error = residual.reshape(-1, *residual.shape[-2:]).mean(axis=0)
    limit = float(np.abs(error).max()) or 1.0
    shown = axes[3].imshow(error, cmap="RdBu_r", vmin=-limit, vmax=limit)
    axes[3].set_title("residual: after - fit")
    axes[3].axis("off")
    figure.colorbar(shown, ax=axes[3], shrink=0.8)
    _save(figure, path)


def save_image_grid(path: Path, images: Mapping[str, np.ndarray], *, signed: bool) -> None:
    """One row of (H, W) images with their titles; ``signed`` uses a diverging colour map centred on 0."""
    plt = pyplot()
    figure, axes = plt.subplots(1, len(images), figsize=(3.2 * len(images), 3), squeeze=False)
    for ax, (title, image) in zip(axes[0], images.items(), strict=True):
        limit = float(np.abs(image).max()) or 1.0
        style = {"cmap": "RdBu_r", "vmin": -limit, "vmax": limit} if signed else {"cmap": "gray", "vmin": 0}
        ax.imshow(image, interpolation="nearest", **style)
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    _save(figure, path)


def save_kernels(path: Path, kernels: Mapping[str, np.ndarray]) -> None:
    """Heat maps of named kernels, values written in the cells."""
    plt = pyplot()
    figure, axes = plt.subplots(1, len(kernels), figsize=(3.2 * len(kernels), 2.6), squeeze=False)
    for ax, (title, kernel) in zip(axes[0], kernels.items(), strict=True):
        _kernel_axes(ax, kernel, title)
    _save(figure, path)


def save_loss_curve(path: Path, losses: Sequence[float], title: str) -> None:
    """The loss per step on a log scale."""
    plt = pyplot()
    figure, ax = plt.subplots(figsize=(5, 3.2))
    ax.semilogy(range(1, len(losses) + 1), losses, marker="o")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (sum of squares)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    _save(figure, path)


def save_matches(
    path: Path, image: np.ndarray, scores: Mapping[str, np.ndarray], matches: Sequence[Mapping[str, Any]]
) -> None:
    """The ``image`` (..., H, W) with a box at each match (rows of ``xcorr match``: ``row``, ``column``,
    ``height``, ``width``, ``rank``), then the score map of each template (up to four)."""
    plt = pyplot()
    shown = list(scores.items())[:4]
    figure, axes = plt.subplots(1, 1 + len(shown), figsize=(5 * (1 + len(shown)), 4), squeeze=False)
    picture, cmap = _displayable(image)
    axes[0, 0].imshow(picture, cmap=cmap)
    for match in matches:
        box = plt.Rectangle(
            (match["column"] - 0.5, match["row"] - 0.5), match["width"], match["height"], fill=False, color="red"
        )
        axes[0, 0].add_patch(box)
        axes[0, 0].annotate(str(match["rank"]), (match["column"], match["row"]), color="red", fontsize=8)
    axes[0, 0].set_title("matches")
    axes[0, 0].axis("off")
    for ax, (name, score) in zip(axes[0, 1:], shown, strict=True):
        heat = ax.imshow(score, cmap="viridis")
        ax.set_title(f"scores: {Path(name).name}")
        ax.axis("off")
        figure.colorbar(heat, ax=ax, shrink=0.8)
    _save(figure, path)
