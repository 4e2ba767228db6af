"""Look at the data before training: `python -m digits.explore`.

Class counts per split, the mean image of each class, the pixel-intensity histogram and a grid of
samples per class, as PNGs in `out` and as TensorBoard images in `out/tensorboard`.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import MISSING, DictConfig
from rich.console import Console
from rich.table import Table

import digits.data.options  # noqa: F401  (conf/data/'s schemas)
from digits.cli import launch
from digits.config import config_dir
from digits.config.machine import check_writable
from digits.config.schema import setting, store_schemas
from digits.constraints import Range
from digits.data.building import build_data
from digits.errors import reports_user_errors
from digits.models.networks import NUM_CLASSES
from digits.presentation.figures import (
    figures_to_tensorboard,
    histogram_figure,
    image_grid_figure,
    save,
)
from digits.runs.writing import write_json


@dataclass
class ExploreConfig:
    data: Any = MISSING
    out: str = MISSING
    samples_per_class: int = setting(Range(ge=1, le=50, note="columns of one figure"))


store_schemas(explore=ExploreConfig)


def class_counts(labels: torch.Tensor) -> list[int]:
    return torch.bincount(labels, minlength=NUM_CLASSES).tolist()


def samples_by_class(images: torch.Tensor, labels: torch.Tensor, per_class: int) -> torch.Tensor:
    return torch.cat([images[labels == digit][:per_class] for digit in range(NUM_CLASSES)])


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="explore")
@reports_user_errors
def hydra_main(cfg: DictConfig) -> None:
    """Write the exploration figures and print the class balance."""
    # The decoded tensors, whatever MNIST's data.pipeline says: it only changes how training
    # batches are made.
    memory = {"pipeline": "memory"} if "pipeline" in cfg.data else {}
    datamodule = build_data(cfg.data, **memory)
    datamodule.prepare_data()
    datamodule.setup()
    splits = {"train": datamodule.train_set, "val": datamodule.val_set, "test": datamodule.test_set}
    counts = {name: class_counts(split.labels) for name, split in splits.items()}

    table = Table(title="images per class", header_style="bold")
    table.add_column("class")
    for name in counts:
        table.add_column(name, justify="right")
    for digit in range(NUM_CLASSES):
        table.add_row(str(digit), *(str(row[digit]) for row in counts.values()))
    table.add_row("total", *(str(sum(row)) for row in counts.values()), style="bold")
    Console().print(table)

    train = splits["train"]
    means = torch.stack(
        [train.images[train.labels == d].float().mean(dim=0) for d in range(NUM_CLASSES)]
    )
    per_class = cfg.samples_per_class
    figures = {
        "mean_per_class": image_grid_figure(means, [str(d) for d in range(NUM_CLASSES)], 10),
        "pixel_histogram": histogram_figure(train.images),
        "samples_per_class": image_grid_figure(
            samples_by_class(train.images, train.labels, per_class), columns=per_class
        ),
    }
    out = Path(cfg.out)
    for name, figure in figures.items():
        save(figure, out / f"{name}.png")
    write_json(out / "class_counts.json", counts)
    figures_to_tensorboard(
        out / "tensorboard", {f"explore/{name}": figure for name, figure in figures.items()}
    )
    Console().print(f"figures written to {out}", soft_wrap=True)


def check_explore(cfg: DictConfig) -> None:
    check_writable(cfg.out, "out", "choose a writable folder with out=...")


def main() -> None:
    """`python -m digits.explore`: check the command line, then run."""
    launch("explore", hydra_main, check_explore)


if __name__ == "__main__":
    main()
