"""A checkpoint's predictions on a split, by Lightning's test (or validation) loop with the run's
own data settings (or another data option's); what they score (torchmetrics); committees of several checkpoints."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, NamedTuple

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassCalibrationError,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from digits.data.building import build_data, data_class
from digits.data.datamodule import DigitsDataModule
from digits.errors import DigitsError
from digits.models.checkpoint import digit_classifier_only, model_from, read_checkpoint
from digits.models.networks import NUM_CLASSES
from digits.models.outputs import Logits
from digits.runs import RunDir
from digits.uncertainty import accuracy_interval


def datamodule_from(checkpoint: dict[str, Any], **overrides: Any) -> DigitsDataModule:
    """The run's data module (its option, root, split), with `overrides` that are not None and
    that option takes. Settings it no longer takes (first-format normalisation) are left out."""
    saved = checkpoint.get("datamodule_hyper_parameters")
    if not saved:
        raise DigitsError(
            f"ckpt_path={checkpoint['path']}: holds no data settings (trained outside digits.train?)"
        )
    # Older checkpoints name no option: MNIST's.
    option = checkpoint.get("data_module", "MNISTDataModule")
    datamodule_class = data_class(option, f"ckpt_path={checkpoint['path']}")
    accepted = inspect.signature(datamodule_class).parameters
    settings = saved | {key: value for key, value in overrides.items() if value is not None}
    return datamodule_class(**{key: value for key, value in settings.items() if key in accepted})


def datamodule_for(cfg: DictConfig, checkpoint: dict[str, Any]) -> DigitsDataModule:
    """The data a report is on: a data option of the command line (`data=folder ...`), else the
    run's own (MNIST moved to `data.root`, where given), batched by `batch_size`."""
    if "_target_" in cfg.data:
        memory = {"pipeline": "memory"} if "pipeline" in cfg.data else {}
        return build_data(cfg.data, batch_size=cfg.batch_size, **memory)
    own_mnist = checkpoint.get("data_module", "MNISTDataModule") == "MNISTDataModule"
    root = cfg.data.root if own_mnist else None  # data.root moves MNIST only
    return datamodule_from(checkpoint, root=root, batch_size=cfg.batch_size, pipeline="memory")


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
    digit_classifier_only(
        checkpoint,
        "digits.evaluate",
        "its run tested it already (metrics.json: test/acc, test/cer; test_predictions.csv), "
        "and digits.compare compares such runs",
    )
    model = model_from(checkpoint)
    model.test_time_shift = cfg.tta
    datamodule = datamodule_for(cfg, checkpoint)
    datamodule.prepare_data()
    collected = Logits(cfg.split)
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
    accuracy = MulticlassAccuracy(NUM_CLASSES, average="micro")(probabilities, labels).item()
    return {
        "images": len(labels),
        "accuracy": accuracy,
        "accuracy_interval": accuracy_interval(round(accuracy * len(labels)), len(labels)),
        "macro": {name: values.mean().item() for name, values in per_class.items()},
        "per_class": {
            str(digit): {name: values[digit].item() for name, values in per_class.items()}
            | {"support": int(matrix[digit].sum())}
            | class_intervals(matrix, digit)
            for digit in range(NUM_CLASSES)
        },
        "confusion_matrix": matrix.tolist(),
        "confused_pairs": pairs,
    }


def class_intervals(matrix: torch.Tensor, digit: int) -> dict[str, dict[str, Any] | None]:
    """A class's precision and recall with their 95% Wilson intervals: recall over the images of
    the class, precision over those predicted as it (None where there are none)."""
    right = int(matrix[digit, digit])
    support, predicted = int(matrix[digit].sum()), int(matrix[:, digit].sum())
    return {
        "precision_interval": accuracy_interval(right, predicted) if predicted else None,
        "recall_interval": accuracy_interval(right, support) if support else None,
    }


def ece_interval(
    probabilities: torch.Tensor, labels: torch.Tensor, bins: int, resamples: int = 200
) -> dict[str, Any]:
    """How sure the expected calibration error is: the test images drawn again with replacement
    (seeded, so a report is repeatable), the ECE of each draw. The ECE is biased upward (noise in
    a bin's gap only adds to it), so its draws sit above it and their percentiles can miss it:
    the basic bootstrap turns them round the estimate instead (2 ECE - quantile), clipped at 0,
    with the bias-corrected estimate (2 ECE - their mean), which the interval holds."""
    generator = torch.Generator().manual_seed(0)
    metric = MulticlassCalibrationError(NUM_CLASSES, n_bins=bins, norm="l1")
    estimate = metric(probabilities, labels).item()
    draws = torch.randint(len(labels), (resamples, len(labels)), generator=generator)
    values = torch.tensor([metric(probabilities[d], labels[d]).item() for d in draws])
    low, high = torch.quantile(values, torch.tensor([0.025, 0.975])).tolist()
    return {"bias_corrected": max(0.0, 2 * estimate - values.mean().item()),
            "low": max(0.0, 2 * estimate - high), "high": max(0.0, 2 * estimate - low),
            "level": 0.95, "method": "basic bootstrap", "resamples": resamples}  # fmt: skip


def calibration(
    probabilities: torch.Tensor, labels: torch.Tensor, bins: int = 15, interval: bool = True
) -> dict:
    """Expected calibration error (torchmetrics) and, for the reliability diagram, each equal-width
    confidence bin's mean confidence, accuracy and count (torchmetrics computes them but does not
    return them), with the ECE's bootstrap interval (`interval`)."""
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
    spread = {"ece_interval": ece_interval(probabilities, labels, bins)} if interval else {}
    return {"ece": ece.item(), **spread, "bins": rows}


def committee(cfg: DictConfig, runs: list[RunDir]) -> tuple[SplitPredictions, list[dict]]:
    """The runs' checkpoints voting as one model, their calibrated probabilities averaged (as
    logits: log-probabilities at temperature 1), and each member's own score."""
    members, scores = [], []
    for run in runs:
        ckpt = run.checkpoint(cfg.checkpoint)
        members.append(predict_split(cfg, ckpt))
        own = score(members[-1].probabilities, members[-1].labels, top_pairs=0)
        kept = ("accuracy", "accuracy_interval", "macro")
        scores.append({"checkpoint": str(ckpt)} | {key: own[key] for key in kept})
        if not torch.equal(members[-1].labels, members[0].labels):
            raise DigitsError(
                f"ensemble: {run.path} was validated on other images than {runs[0].path} "
                "(another data.split_seed or val_size); use split=test"
            )
    average = torch.stack([member.probabilities for member in members]).mean(dim=0)
    first = members[0]
    return SplitPredictions(average.log(), 1.0, first.labels, first.images), scores
