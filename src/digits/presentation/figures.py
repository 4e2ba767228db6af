"""Figures shared by training, evaluation and data exploration (matplotlib, no display needed)."""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from digits.atomic import save_figure
from digits.errors import DigitsError


def confusion_matrix_figure(matrix: torch.Tensor, title: str = "confusion matrix") -> Figure:
    """Counts with true labels as rows and predictions as columns."""
    counts = matrix.cpu().numpy()
    # Fixed margins rather than tight_layout, which took a third of the time of a figure that
    # training draws after every validation.
    figure, axes = plt.subplots(figsize=(6.5, 5.5))
    figure.subplots_adjust(left=0.1, right=0.98, bottom=0.1, top=0.93)
    shown = axes.imshow(np.log1p(counts), cmap="Blues")
    figure.colorbar(shown, ax=axes, label="log(1 + count)")
    threshold = np.log1p(counts).max() / 2
    for (row, col), count in np.ndenumerate(counts):
        if count:
            color = "white" if np.log1p(count) > threshold else "black"
            axes.text(col, row, str(count), ha="center", va="center", fontsize=7, color=color)
    classes = range(counts.shape[0])
    axes.set(xticks=classes, yticks=classes, xlabel="predicted", ylabel="true", title=title)
    return figure


def confident_mistakes(
    probabilities: torch.Tensor, labels: torch.Tensor, count: int
) -> tuple[torch.Tensor, list[str]]:
    """Indices of the `count` wrong predictions made with the highest confidence, with captions."""
    confidence, predicted = probabilities.max(dim=1)
    wrong = (predicted != labels).nonzero().flatten()
    order = wrong[confidence[wrong].argsort(descending=True)][:count]
    captions = [f"{labels[i]}→{predicted[i]} {confidence[i]:.0%}" for i in order.tolist()]
    return order, captions


def image_grid_figure(
    images: torch.Tensor | np.ndarray,
    titles: Sequence[str] = (),
    columns: int = 8,
    title: str = "",
    cell: float = 1.2,
    fontsize: float = 7,
) -> Figure:
    """A grid of grayscale images (N, H, W), each scaled to its own range, with an optional caption
    above it; `cell` inches per image. One axes holding one montage, not an axes per image: drawn
    after every validation, 16 axes took 0.2 s to lay out and render, one takes 0.04 s."""
    images = images.cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    height, width = images.shape[-2:]
    rows = max(1, math.ceil(len(images) / columns))
    # Each cell: a band for its caption (the font's height in image pixels), the image, a gap.
    band = math.ceil(1.3 * fontsize / 72 * width / cell) if titles else 0
    gap = max(1, width // 14)
    cell_height, cell_width = band + height + gap, width + gap
    montage = np.full((rows * cell_height, columns * cell_width), np.nan)  # NaN: blank (white)
    for index, image in enumerate(images.astype(float)):
        row, column = divmod(index, columns)
        low, high = image.min(), image.max()
        top, left = row * cell_height + band, column * cell_width + gap // 2
        montage[top : top + height, left : left + width] = (image - low) / max(high - low, 1e-12)
    heading = 0.4 if title else 0.0  # inches
    size = (columns * cell_width / width * cell, rows * cell_height / width * cell + heading)
    figure = plt.figure(figsize=size)
    axes = figure.add_axes((0, 0, 1, 1 - heading / size[1]))
    axes.imshow(montage, cmap=plt.get_cmap("gray").with_extremes(bad="white"),
                interpolation="nearest", vmin=0, vmax=1)  # fmt: skip
    axes.axis("off")
    for index, caption in enumerate(titles[: len(images)]):
        row, column = divmod(index, columns)
        axes.text((column + 0.5) * cell_width - 0.5, row * cell_height + band - 1, caption,
                  ha="center", va="bottom", fontsize=fontsize)  # fmt: skip
    if title:
        figure.suptitle(title, fontsize=max(fontsize, 10), y=1 - 0.1 / size[1], va="top")
    return figure


def reliability_figure(bins: list[dict], ece: float, title: str = "reliability") -> Figure:
    """Accuracy against confidence per confidence bin (a calibrated model lies on the diagonal),
    with how many images each bin holds."""
    figure, (axes, counts) = plt.subplots(
        2, 1, figsize=(5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    filled = [b for b in bins if b["count"]]
    width = bins[0]["upper"] - bins[0]["lower"]
    lowers = [b["lower"] for b in filled]
    axes.bar(lowers, [b["accuracy"] for b in filled], width=width, align="edge",
             edgecolor="black", label="accuracy")  # fmt: skip
    axes.plot([0, 1], [0, 1], "--", color="gray", label="calibrated")
    middles = [b["lower"] + width / 2 for b in filled]
    axes.plot(middles, [b["confidence"] for b in filled], "_", color="crimson", markersize=14,
              markeredgewidth=2, label="mean confidence")  # fmt: skip
    axes.set(ylabel="accuracy", xlim=(0, 1), ylim=(0, 1), title=f"{title}: ECE {ece:.4f}")
    axes.legend(loc="upper left")
    counts.bar(lowers, [b["count"] for b in filled], width=width, align="edge", color="gray")
    counts.set(xlabel="confidence", ylabel="images", yscale="log")
    figure.tight_layout()
    return figure


# What each error bar of the accuracy-against-time plot is, in its legend.
INTERVALS = {
    "wilson": ("tab:blue", "o", "a run: 95% Wilson interval over its test images"),
    "t": ("tab:orange", "s", "a group: 95% Student's t interval of its mean over its runs"),
}


def accuracy_vs_time_figure(
    points: Sequence[tuple[str, float, float, float | None, float | None, str]],
) -> Figure:
    """Test accuracy against training time, one labelled point per run or group of replicates
    (name, seconds, accuracy, its interval's low and high: an error bar where known, and which
    interval it is: wilson or t, said in the legend)."""
    figure, axes = plt.subplots(figsize=(7, 4.5))
    shown = set()
    for name, seconds, accuracy, low, high, kind in points:
        # (an interval recorded with an accuracy edited since may not hold it: no negative bar)
        bar = (
            None
            if low is None or high is None
            else [[max(0, accuracy - low) * 100], [max(0, high - accuracy) * 100]]
        )
        color, marker, meaning = INTERVALS[kind]
        axes.errorbar(seconds, accuracy * 100, yerr=bar, fmt=marker, color=color, capsize=4,
                      label=None if kind in shown else meaning)  # fmt: skip
        shown.add(kind)
        axes.annotate(name, (seconds, accuracy * 100), textcoords="offset points", xytext=(4, 4),
                      fontsize=8)  # fmt: skip
    axes.set(xlabel="training time (s)", ylabel="test accuracy (%)",
             title="test accuracy against training time")  # fmt: skip
    if shown:
        axes.legend(fontsize=8, loc="lower right")
    times = [point[1] for point in points]
    if times and min(times) > 0 and max(times) / min(times) > 20:  # seconds and minutes apart
        axes.set_xscale("log")
    axes.margins(x=0.15, y=0.1)  # room for the labels
    axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def save(figure: Figure, path: Path) -> Path:
    try:
        save_figure(figure, path, "the figure", dpi=120)
    finally:
        plt.close(figure)
    return path


def histogram_figure(images: torch.Tensor) -> Figure:
    """How many pixels have each value 0-255 (log scale)."""
    counts = torch.bincount(images.flatten().long(), minlength=256).numpy()
    figure, axes = plt.subplots(figsize=(7, 3.5))
    axes.bar(np.arange(256), counts, width=1.0)
    axes.set(
        yscale="log", xlabel="pixel value (0 = black)", ylabel="pixels", title="pixel intensities"
    )
    figure.tight_layout()
    return figure


def figures_to_tensorboard(folder: Path, figures: Mapping[str, Figure]) -> None:
    """The figures as TensorBoard images in a new event file of `folder`; a full disk or a
    read-only folder is one DigitsError naming it, and leaves no half-written event file."""
    from torch.utils.tensorboard import SummaryWriter  # here: TensorBoard takes a second to import

    before = set(folder.glob("events.out.tfevents.*")) if folder.is_dir() else set()
    try:
        with writer_thread_errors_kept_quiet():
            writer = SummaryWriter(str(folder))
            try:
                for tag, figure in figures.items():
                    writer.add_figure(tag, figure, close=False)
            finally:
                writer.close()  # re-raises what its writer thread met
    except OSError as error:
        for made in set(folder.glob("events.out.tfevents.*")) - before:
            made.unlink(missing_ok=True)
        raise DigitsError(
            f"{folder}: could not write the TensorBoard figures ({error.strerror or error})"
        ) from error


@contextlib.contextmanager
def writer_thread_errors_kept_quiet() -> Iterator[None]:
    """TensorBoard's writer thread prints the traceback of an OSError (a full disk) before the
    writer raises it again in our thread, where it is said in one line: the thread's copy is
    dropped."""
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if not isinstance(args.exc_value, OSError):
            previous(args)

    threading.excepthook = hook
    try:
        yield
    finally:
        threading.excepthook = previous
