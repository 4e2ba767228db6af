"""Evaluate trained models: `python -m digits.evaluate run=outputs/runs/<run>` (or `ckpt_path=<file>`).

Reports accuracy, per-class and macro precision/recall/F1, the confusion matrix, the most confused
pairs and the most confidently wrong images; writes them under the run's `evaluation/` folder and
into its TensorBoard. Given a multirun directory, evaluates every job and compares them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table
from torch.utils.tensorboard import SummaryWriter
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from digits import config_dir
from digits.checkpoints import datamodule_from, model_from, read_checkpoint
from digits.errors import DigitsError
from digits.models import NUM_CLASSES
from digits.plots import confusion_matrix_figure, image_grid_figure, save
from digits.utils import launch, reports_user_errors, write_json

SPLITS = ("test", "val")
console = Console()


def find_runs(path: Path) -> list[Path]:
    """The run itself, or every job of a multirun directory, in job order."""
    if not path.is_dir():
        raise DigitsError(f"run={path}: no such directory")
    if (path / "checkpoints").is_dir():
        return [path]
    jobs = [child for child in path.iterdir() if (child / "checkpoints").is_dir()]
    if not jobs:
        raise DigitsError(f"run={path}: neither a run (no checkpoints/) nor a multirun of runs")
    return sorted(
        jobs,
        key=lambda job: (
            not job.name.isdigit(),
            int(job.name) if job.name.isdigit() else 0,
            job.name,
        ),
    )


def run_checkpoint(run_dir: Path, which: str) -> Path:
    """The run's best (by val/acc) or last checkpoint."""
    folder = run_dir / "checkpoints"
    if which == "last":
        path = folder / "last.ckpt"
    elif which == "best":
        ranked = sorted(folder.glob("epoch*.ckpt"), key=lambda p: p.stat().st_mtime)
        path = ranked[-1] if ranked else folder / "epoch*.ckpt"
    else:
        raise DigitsError(f"checkpoint={which}: use best or last")
    if not path.is_file():
        raise DigitsError(f"{path}: checkpoint not found in {folder}")
    return path


def tensorboard_dir(run_dir: Path) -> Path:
    """Where the run's TensorBoard events are (tensorboard/<run name>/), so figures join its curves."""
    events = sorted((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    return events[0].parent if events else run_dir / "tensorboard"


@torch.no_grad()
def predict_split(
    ckpt_path: Path, split: str, data_root: str | None, batch_size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Class probabilities, true labels and raw uint8 images of one split, in dataset order."""
    checkpoint = read_checkpoint(ckpt_path)
    model = model_from(checkpoint, device)
    datamodule = datamodule_from(
        checkpoint, root=data_root, batch_size=batch_size, pipeline="memory"
    )
    datamodule.prepare_data()
    datamodule.setup("test" if split == "test" else "fit")
    dataset = datamodule.test_set if split == "test" else datamodule.val_set
    loader = datamodule.test_dataloader() if split == "test" else datamodule.val_dataloader()
    probabilities = []
    for batch in loader:
        images, _ = datamodule.on_after_batch_transfer([t.to(device) for t in batch], 0)
        probabilities.append(model(images).softmax(dim=1).cpu())
    return torch.cat(probabilities), dataset.labels, dataset.images


def score(probabilities: torch.Tensor, labels: torch.Tensor, top_pairs: int) -> dict[str, Any]:
    """Accuracy, per-class and macro precision/recall/F1, confusion matrix, most confused pairs."""
    per_class = {
        name: metric(NUM_CLASSES, average=None)(probabilities, labels)
        for name, metric in (
            ("precision", MulticlassPrecision),
            ("recall", MulticlassRecall),
            ("f1", MulticlassF1Score),
        )
    }
    matrix = MulticlassConfusionMatrix(NUM_CLASSES)(probabilities, labels)
    off_diagonal = matrix.clone().fill_diagonal_(0)
    counts, flat = off_diagonal.flatten().sort(descending=True)
    pairs = [
        {"true": int(i // NUM_CLASSES), "predicted": int(i % NUM_CLASSES), "count": int(c)}
        for c, i in zip(counts[:top_pairs], flat[:top_pairs], strict=True)
        if c > 0
    ]
    return {
        "images": len(labels),
        "accuracy": MulticlassAccuracy(NUM_CLASSES, average="micro")(probabilities, labels).item(),
        "macro": {name: values.mean().item() for name, values in per_class.items()},
        "per_class": {
            str(digit): {name: values[digit].item() for name, values in per_class.items()}
            | {"support": int(matrix[digit].sum())}
            for digit in range(NUM_CLASSES)
        },
        "confusion_matrix": matrix.tolist(),
        "confused_pairs": pairs,
    }


def confident_mistakes(
    probabilities: torch.Tensor, labels: torch.Tensor, count: int
) -> tuple[torch.Tensor, list[str]]:
    """Indices of the `count` wrong predictions made with the highest confidence, with captions."""
    confidence, predicted = probabilities.max(dim=1)
    wrong = (predicted != labels).nonzero().flatten()
    order = wrong[confidence[wrong].argsort(descending=True)][:count]
    captions = [f"{labels[i]}→{predicted[i]} {confidence[i]:.0%}" for i in order.tolist()]
    return order, captions


def evaluate_run(cfg: DictConfig, ckpt_path: Path, out_dir: Path, run_dir: Path | None) -> dict:
    """Evaluate one checkpoint; write metrics.json and figures into out_dir."""
    device = torch.device("cuda" if cfg.accelerator == "gpu" else "cpu")
    probabilities, labels, images = predict_split(
        ckpt_path, cfg.split, cfg.data_root, cfg.batch_size, device
    )
    result = {"checkpoint": str(ckpt_path), "split": cfg.split} | score(
        probabilities, labels, cfg.top_pairs
    )
    order, captions = confident_mistakes(probabilities, labels, cfg.mistakes)
    matrix = torch.tensor(result["confusion_matrix"])
    title = f"{cfg.split}: accuracy {result['accuracy']:.2%}"
    figures = {
        "confusion_matrix": confusion_matrix_figure(matrix, title),
        "mistakes": image_grid_figure(
            images[order], captions, title="most confident mistakes (true→predicted)"
        ),
    }
    if cfg.tensorboard and run_dir is not None:
        writer = SummaryWriter(str(tensorboard_dir(run_dir)))
        for name, figure in figures.items():
            writer.add_figure(f"evaluation/{cfg.split}/{name}", figure, close=False)
        writer.close()
    for name, figure in figures.items():
        save(figure, out_dir / f"{name}.png")
    write_json(out_dir / "metrics.json", result)
    return result


def print_report(result: dict, out_dir: Path) -> None:
    table = Table(title=f"{result['split']} set: {result['images']} images", header_style="bold")
    for column in ("class", "precision", "recall", "f1", "support"):
        table.add_column(column, justify="right")
    for digit, row in result["per_class"].items():
        table.add_row(
            digit, *(f"{row[k]:.4f}" for k in ("precision", "recall", "f1")), str(row["support"])
        )
    macro = result["macro"]
    table.add_row(
        "macro", *(f"{macro[k]:.4f}" for k in ("precision", "recall", "f1")), "", style="bold"
    )
    console.print(table)
    console.print(f"accuracy: [bold]{result['accuracy']:.4f}[/bold]")
    pairs = ", ".join(
        f"{p['true']}→{p['predicted']} ({p['count']})" for p in result["confused_pairs"]
    )
    console.print(f"most confused (true→predicted): {pairs or 'none'}", soft_wrap=True)
    console.print(f"written to {out_dir}", soft_wrap=True)


def print_comparison(rows: list[tuple[Path, dict]]) -> None:
    table = Table(title="evaluation of every job", header_style="bold")
    for column in ("job", "overrides", "accuracy", "macro f1", "checkpoint"):
        table.add_column(column)
    for run_dir, result in sorted(rows, key=lambda row: -row[1]["accuracy"]):
        overrides_file = run_dir / ".hydra" / "overrides.yaml"
        overrides = OmegaConf.load(overrides_file) if overrides_file.is_file() else []
        table.add_row(
            run_dir.name,
            " ".join(str(o) for o in overrides),
            f"{result['accuracy']:.4f}",
            f"{result['macro']['f1']:.4f}",
            Path(result["checkpoint"]).name,
        )
    console.print(table)


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="evaluate")
@reports_user_errors
def hydra_main(cfg: DictConfig) -> None:
    """Evaluate a run, every job of a multirun, or one checkpoint."""
    if cfg.split not in SPLITS:
        raise DigitsError(f"split={cfg.split}: use one of {', '.join(SPLITS)}")
    folder = "evaluation" if cfg.split == "test" else f"evaluation_{cfg.split}"
    if cfg.ckpt_path:
        ckpt = Path(cfg.ckpt_path)
        run_dir = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else None
        out_dir = (run_dir or ckpt.parent) / folder
        print_report(evaluate_run(cfg, ckpt, out_dir, run_dir), out_dir)
        return
    if not cfg.run:
        raise DigitsError("give run=<run or multirun directory> or ckpt_path=<checkpoint file>")
    runs = find_runs(Path(cfg.run))
    rows = []
    for run_dir in runs:
        result = evaluate_run(
            cfg, run_checkpoint(run_dir, cfg.checkpoint), run_dir / folder, run_dir
        )
        if len(runs) == 1:
            print_report(result, run_dir / folder)
        rows.append((run_dir, result))
    if len(runs) > 1:
        print_comparison(rows)


def main() -> None:
    """`python -m digits.evaluate`: check the command line, then run."""
    launch("evaluate", hydra_main)


if __name__ == "__main__":
    main()
