"""What an evaluation leaves: metrics.json, each image's result (predictions.csv, as a run's
test_predictions.csv) and figures (reliability, confusion matrix, most confident mistakes) in the
evaluated run's evaluation folder, and the figures in its TensorBoard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from digits.evaluation.scoring import SplitPredictions, calibration, predict_split, score
from digits.presentation.figures import (
    confident_mistakes,
    confusion_matrix_figure,
    figures_to_tensorboard,
    image_grid_figure,
    reliability_figure,
    save,
)
from digits.runs import RunDir
from digits.runs.per_image import PerImageResults
from digits.runs.run_dir import PREDICTIONS_FILE
from digits.runs.writing import write_json


def evaluate_run(cfg: DictConfig, ckpt_path: Path, out_dir: Path, run: RunDir | None) -> dict:
    """Evaluate one checkpoint; write metrics.json and figures into out_dir."""
    result = {"checkpoint": str(ckpt_path), "split": cfg.split, "tta": cfg.tta}
    return write_report(cfg, predict_split(cfg, ckpt_path), result, out_dir, run)


def write_report(
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
        "ece_uncalibrated": calibration(split.uncalibrated, labels, interval=False)["ece"],
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
    for name, figure in figures.items():
        save(figure, out_dir / f"{name}.png")
    write_json(out_dir / "metrics.json", result)
    confidence, predicted = probabilities.max(dim=1)
    per_image = PerImageResults(labels.numpy(), predicted.numpy(), confidence.numpy())
    per_image.write(out_dir / PREDICTIONS_FILE)
    if cfg.tensorboard and run is not None:
        tta = f"/tta{cfg.tta}" if cfg.tta else ""
        figures_to_tensorboard(
            run.tensorboard_events(),
            {f"evaluation/{cfg.split}{tta}/{name}": figure for name, figure in figures.items()},
        )
    return result
