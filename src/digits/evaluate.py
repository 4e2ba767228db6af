"""Evaluate trained models: `python -m digits.evaluate run=outputs/runs/<run>` (or `ckpt_path=<file>`).

Reports accuracy, per-class and macro precision/recall/F1, the confusion matrix, the most confused
pairs and the most confidently wrong images; writes them under the run's `evaluation/` folder and
into its TensorBoard. Given a multirun directory, evaluates every job and compares them, or with
`ensemble=true` scores the jobs as one committee (their calibrated probabilities averaged).
`tta=N` averages each model's logits over the images shifted by up to N pixels.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any, NamedTuple

import hydra
import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table
from torch.utils.tensorboard import SummaryWriter
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassCalibrationError,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from digits.cli import launch, silence_known_warnings
from digits.config import config_dir
from digits.config.checks import check_evaluate
from digits.data import MNISTDataModule
from digits.data.idx import ensure_mnist
from digits.errors import DigitsError, reports_user_errors
from digits.models import NUM_CLASSES
from digits.models.checkpoint import model_from, read_checkpoint
from digits.presentation.figures import (
    confident_mistakes,
    confusion_matrix_figure,
    image_grid_figure,
    reliability_figure,
    save,
)
from digits.runs import RunDir, SweepDir, runs_in
from digits.runs.writing import write_json

console = Console()


class Logits(L.Callback):
    """Collects what test_step / validation_step return (logits) with the labels."""

    def __init__(self) -> None:
        self.logits: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []

    def _collect(self, outputs: torch.Tensor, batch: Any) -> None:
        self.logits.append(outputs.detach().float().cpu())
        self.labels.append(batch[1].cpu())

    def on_test_batch_end(
        self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, *_: Any
    ) -> None:
        self._collect(outputs, batch)

    def on_validation_batch_end(
        self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, *_: Any
    ) -> None:
        self._collect(outputs, batch)


def datamodule_from(checkpoint: dict[str, Any], **overrides: Any) -> MNISTDataModule:
    """The run's data module (root, split, pipeline), with `overrides` that are not None. Settings
    the data module no longer takes (first-format normalisation) are left out."""
    saved = checkpoint.get("datamodule_hyper_parameters")
    if not saved:
        raise DigitsError(
            f"ckpt_path={checkpoint['path']}: holds no data settings (trained outside digits.train?)"
        )
    accepted = inspect.signature(MNISTDataModule).parameters
    settings = {key: value for key, value in saved.items() if key in accepted}
    given = {key: value for key, value in overrides.items() if value is not None}
    return MNISTDataModule(**(settings | given))


class SplitPredictions(NamedTuple):
    logits: torch.Tensor
    temperature: float  # the checkpoint's own
    labels: torch.Tensor
    images: torch.Tensor  # raw uint8

    @property
    def probabilities(self) -> torch.Tensor:
        """Calibrated: the softmax of the logits divided by the temperature."""
        return (self.logits / self.temperature).softmax(dim=1)

    @property
    def uncalibrated(self) -> torch.Tensor:
        return self.logits.softmax(dim=1)


def predict_split(cfg: DictConfig, ckpt_path: Path) -> SplitPredictions:
    """The model's predictions on one split, in dataset order, by Lightning's test (or
    validation) loop with the run's own data settings."""
    checkpoint = read_checkpoint(ckpt_path)
    model = model_from(checkpoint)
    model.test_time_shift = cfg.tta
    datamodule = datamodule_from(
        checkpoint, root=cfg.data_root, batch_size=cfg.batch_size, pipeline="memory"
    )
    ensure_mnist(datamodule.root, datamodule.hparams.download, key="data_root")
    collected = Logits()
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        logger=False,
        callbacks=[collected],
        enable_progress_bar=False,
        enable_checkpointing=False,
    )
    if cfg.split == "test":
        trainer.test(model, datamodule=datamodule, verbose=False)
        dataset = datamodule.test_set
    else:
        trainer.validate(model, datamodule=datamodule, verbose=False)
        dataset = datamodule.val_set
    return SplitPredictions(
        torch.cat(collected.logits),
        model.temperature.item(),
        torch.cat(collected.labels),
        dataset.images,
    )


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


def calibration(probabilities: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> dict:
    """Expected calibration error (torchmetrics) and, for the reliability diagram, each equal-width
    confidence bin's mean confidence, accuracy and count (torchmetrics computes them but does not
    return them)."""
    ece = MulticlassCalibrationError(NUM_CLASSES, n_bins=bins, norm="l1")(probabilities, labels)
    confidence, predicted = probabilities.max(dim=1)
    correct = (predicted == labels).float()
    edges = torch.linspace(0, 1, bins + 1)
    index = (torch.bucketize(confidence, edges, right=False) - 1).clamp(0, bins - 1)
    rows = []
    for b in range(bins):
        chosen = index == b
        count = int(chosen.sum())
        rows.append(
            {
                "lower": round(float(edges[b]), 4),
                "upper": round(float(edges[b + 1]), 4),
                "count": count,
                "confidence": float(confidence[chosen].mean()) if count else None,
                "accuracy": float(correct[chosen].mean()) if count else None,
            }
        )
    return {"ece": ece.item(), "bins": rows}


def committee(cfg: DictConfig, runs: list[RunDir]) -> tuple[SplitPredictions, list[dict]]:
    """The runs' checkpoints voting as one model, their calibrated probabilities averaged (as
    logits: log-probabilities at temperature 1), and each member's own score."""
    members, scores = [], []
    for run in runs:
        ckpt = run.checkpoint(cfg.checkpoint)
        members.append(predict_split(cfg, ckpt))
        own = score(members[-1].probabilities, members[-1].labels, top_pairs=0)
        scores.append({"checkpoint": str(ckpt), "accuracy": own["accuracy"], "macro": own["macro"]})
        if not torch.equal(members[-1].labels, members[0].labels):
            raise DigitsError(
                f"ensemble: {run.path} was validated on other images than {runs[0].path} "
                "(another data.split_seed or val_size); use split=test"
            )
    average = torch.stack([member.probabilities for member in members]).mean(dim=0)
    first = members[0]
    return SplitPredictions(average.log(), 1.0, first.labels, first.images), scores


def evaluate_run(cfg: DictConfig, ckpt_path: Path, out_dir: Path, run: RunDir | None) -> dict:
    """Evaluate one checkpoint; write metrics.json and figures into out_dir."""
    result = {"checkpoint": str(ckpt_path), "split": cfg.split, "tta": cfg.tta}
    return report(cfg, predict_split(cfg, ckpt_path), result, out_dir, run)


def report(
    cfg: DictConfig,
    split: SplitPredictions,
    result: dict[str, Any],
    out_dir: Path,
    run: RunDir | None,
) -> dict:
    """Score predictions on a split; write metrics.json and figures into out_dir (and the run's
    TensorBoard)."""
    probabilities, labels = split.probabilities, split.labels
    result |= score(probabilities, labels, cfg.top_pairs)
    result["calibration"] = calibration(probabilities, labels) | {
        "temperature": split.temperature,
        "ece_uncalibrated": calibration(split.uncalibrated, labels)["ece"],
    }
    order, captions = confident_mistakes(probabilities, labels, cfg.mistakes)
    matrix = torch.tensor(result["confusion_matrix"])
    title = f"{cfg.split}: accuracy {result['accuracy']:.2%}"
    figures = {
        "reliability": reliability_figure(
            result["calibration"]["bins"],
            result["calibration"]["ece"],
            f"{cfg.split}, temperature {result['calibration']['temperature']:.2f}",
        ),
        "confusion_matrix": confusion_matrix_figure(matrix, title),
        "mistakes": image_grid_figure(
            split.images[order], captions, title="most confident mistakes (true→predicted)"
        ),
    }
    if cfg.tensorboard and run is not None:
        writer = SummaryWriter(str(run.tensorboard_events()))
        for name, figure in figures.items():
            tta = f"/tta{cfg.tta}" if cfg.tta else ""
            writer.add_figure(f"evaluation/{cfg.split}{tta}/{name}", figure, close=False)
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
    calibrated = result["calibration"]
    console.print(
        f"expected calibration error (15 bins): {calibrated['ece']:.4f} at temperature "
        f"{calibrated['temperature']:.3f} ({calibrated['ece_uncalibrated']:.4f} uncalibrated)",
        soft_wrap=True,
    )
    pairs = ", ".join(
        f"{p['true']}→{p['predicted']} ({p['count']})" for p in result["confused_pairs"]
    )
    console.print(f"most confused (true→predicted): {pairs or 'none'}", soft_wrap=True)
    console.print(f"written to {out_dir}", soft_wrap=True)


def print_comparison(rows: list[tuple[RunDir, dict | DigitsError]]) -> None:
    """One row per job, best first; jobs that could not be evaluated last, with the reason."""
    table = Table(title="evaluation of every job", header_style="bold")
    for column in ("job", "overrides", "accuracy", "macro f1", "checkpoint"):
        table.add_column(column, overflow="fold")
    done = sorted(
        (row for row in rows if isinstance(row[1], dict)), key=lambda r: -r[1]["accuracy"]
    )
    for run, result in done:
        accuracy, f1 = f"{result['accuracy']:.4f}", f"{result['macro']['f1']:.4f}"
        table.add_row(
            run.path.name, " ".join(run.overrides()), accuracy, f1, Path(result["checkpoint"]).name
        )
    for run, _ in (row for row in rows if isinstance(row[1], DigitsError)):
        table.add_row(run.path.name, " ".join(run.overrides()), "-", "-", "failed (see below)")
    console.print(table)


def evaluate_committee(cfg: DictConfig, path: Path) -> None:
    """Score every job of a multirun (or one run) and the committee of them all."""
    runs = runs_in(path)
    split, members = committee(cfg, runs)
    out_dir = SweepDir(path).ensemble_evaluation(cfg.split, cfg.tta)
    result = {"checkpoint": [m["checkpoint"] for m in members], "split": cfg.split, "tta": cfg.tta}
    result = report(cfg, split, result | {"members": members}, out_dir, run=None)
    print_comparison(list(zip(runs, members, strict=True)))
    console.print(f"committee of {len(runs)}:", style="bold")
    print_report(result, out_dir)


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="evaluate")
@reports_user_errors
def hydra_main(cfg: DictConfig) -> None:
    """Evaluate a run, every job of a multirun, or one checkpoint."""
    silence_known_warnings()
    if cfg.ensemble:
        evaluate_committee(cfg, Path(cfg.run))
        return
    if cfg.ckpt_path:
        ckpt = Path(cfg.ckpt_path)
        run = RunDir.of_checkpoint(ckpt)
        # Results go into the checkpoint's run, or next to a checkpoint outside any run.
        out_dir = (run or RunDir(ckpt.parent)).evaluation(cfg.split, cfg.tta)
        print_report(evaluate_run(cfg, ckpt, out_dir, run), out_dir)
        return
    if RunDir(Path(cfg.run)).checkpoints.is_dir():  # one run
        run = RunDir(Path(cfg.run))
        out_dir = run.evaluation(cfg.split, cfg.tta)
        print_report(evaluate_run(cfg, run.checkpoint(cfg.checkpoint), out_dir, run), out_dir)
        return
    rows: list[tuple[RunDir, dict | DigitsError]] = []
    for run in runs_in(Path(cfg.run)):  # a multirun: a job that cannot be evaluated is listed
        try:
            out_dir = run.evaluation(cfg.split, cfg.tta)
            rows.append((run, evaluate_run(cfg, run.checkpoint(cfg.checkpoint), out_dir, run)))
        except DigitsError as error:
            reason = run.error_file.read_text().strip() if run.error_file.is_file() else error
            rows.append((run, DigitsError(f"job {run.path.name} not evaluated: {reason}")))
    print_comparison(rows)
    for _, failure in (row for row in rows if isinstance(row[1], DigitsError)):
        print(f"error: {failure}", file=sys.stderr)
    if any(isinstance(result, DigitsError) for _, result in rows):
        sys.exit(1)


def main() -> None:
    """`python -m digits.evaluate`: check the command line, then run."""
    launch("evaluate", hydra_main, check_evaluate)


if __name__ == "__main__":
    main()
