"""Figures shared by training, evaluation and data exploration (matplotlib, no display needed)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure


def confusion_matrix_figure(matrix: torch.Tensor, title: str = "confusion matrix") -> Figure:
    """Counts with true labels as rows and predictions as columns."""
    counts = matrix.cpu().numpy()
    figure, axes = plt.subplots(figsize=(6.5, 5.5))
    shown = axes.imshow(np.log1p(counts), cmap="Blues")
    figure.colorbar(shown, ax=axes, label="log(1 + count)")
    threshold = np.log1p(counts).max() / 2
    for (row, col), count in np.ndenumerate(counts):
        if count:
            color = "white" if np.log1p(count) > threshold else "black"
            axes.text(col, row, str(count), ha="center", va="center", fontsize=7, color=color)
    classes = range(counts.shape[0])
    axes.set(xticks=classes, yticks=classes, xlabel="predicted", ylabel="true", title=title)
    figure.tight_layout()
    return figure


def image_grid_figure(
    images: torch.Tensor | np.ndarray, titles: Sequence[str] = (), columns: int = 8, title: str = ""
) -> Figure:
    """A grid of grayscale images (N, H, W), each with an optional caption."""
    images = images.cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    rows = max(1, math.ceil(len(images) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.2, rows * 1.35), squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index < len(images):
            axis.imshow(images[index], cmap="gray")
            if index < len(titles):
                axis.set_title(titles[index], fontsize=7)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
