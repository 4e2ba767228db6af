"""Classify your own images: `python -m digits.predict ckpt_path=<file> images=[a.png,photos/]`.

Each image is preprocessed the way MNIST was made (see digits.reading.preprocess) and classified by
the checkpoint's model, loaded once, through Lightning's predict loop. Prints the digit, its
confidence and the top-k classes per image (`output=json` for JSON lines). Unreadable files are
reported one line each and the rest still predicted; the exit status is 1 if any image failed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import hydra
import lightning as L
import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from rich.console import Console
from rich.table import Table
from torch.utils.data import DataLoader

from digits.cli import launch, reports_user_errors, silence_known_warnings
from digits.config import config_dir
from digits.config.checks import check_predict
from digits.errors import DigitsError
from digits.models import NUM_CLASSES, load_classifier
from digits.reading.images import IMAGE_SUFFIXES, image_files, load_grayscale
from digits.reading.preprocess import FIELD, PREPROCESSORS, BlankImage


@dataclass
class Prediction:
    path: Path
    digit: int | None = None
    confidence: float | None = None
    top: list[tuple[int, float]] = field(default_factory=list)
    error: str | None = None
    blank: bool = False


def prepare(
    files: list[Path], preprocess: Callable[[np.ndarray], torch.Tensor]
) -> tuple[list[Prediction], list[torch.Tensor]]:
    """One Prediction per file; the 28x28 tensors of those that could be preprocessed."""
    predictions, images = [], []
    for path in files:
        prediction = Prediction(path)
        predictions.append(prediction)
        try:
            if not path.is_file():
                raise DigitsError(f"{path}: no such file")
            images.append(preprocess(load_grayscale(path)))
        except BlankImage:
            prediction.blank = True
        except DigitsError as error:
            prediction.error = str(error)
    return predictions, images


def quiet_trainer() -> L.Trainer:
    """A Trainer for inference that prints and writes nothing (for tools; the CLI uses conf/trainer)."""
    return L.Trainer(devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False)


class Predictor:
    """A checkpoint's model, loaded once, run by a Lightning Trainer's predict loop."""

    def __init__(self, ckpt_path: str | Path, trainer: L.Trainer | None = None) -> None:
        self.model = load_classifier(ckpt_path)
        self.trainer = trainer or quiet_trainer()

    def probabilities(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Class probabilities for (N, 28, 28) images in 0-1, white ink on black."""
        if not len(images):
            return torch.empty(0, NUM_CLASSES)
        loader = DataLoader(images.unsqueeze(1), batch_size=batch_size)
        return torch.cat(self.trainer.predict(self.model, dataloaders=loader)).float().cpu()

    def __call__(
        self,
        files: list[Path],
        preprocess: str,
        top_k: int,
        batch_size: int = 256,
        save_dir: Path | None = None,
    ) -> list[Prediction]:
        """Preprocess and classify every file; failures are recorded on their Prediction."""
        predictions, images = prepare(files, PREPROCESSORS[preprocess])
        stacked = torch.stack(images) if images else torch.empty(0, FIELD, FIELD)
        probabilities = self.probabilities(stacked, batch_size)
        ok = [p for p in predictions if p.error is None and not p.blank]
        for prediction, probs, image in zip(ok, probabilities, stacked, strict=True):
            values, digits = probs.topk(top_k)
            prediction.digit, prediction.confidence = int(digits[0]), float(values[0])
            prediction.top = [(int(d), float(v)) for d, v in zip(digits, values, strict=True)]
            if save_dir is not None:
                save_dir.mkdir(parents=True, exist_ok=True)
                pixels = (image * 255).round().byte().numpy()
                Image.fromarray(pixels).save(save_dir / f"{prediction.path.stem}.png")
        return predictions


def report(predictions: list[Prediction], output: str) -> None:
    for prediction in predictions:
        if prediction.error:
            print(f"error: {prediction.error}", file=sys.stderr)
    if output == "json":
        for p in predictions:
            record = {
                "file": str(p.path),
                "digit": p.digit,
                "confidence": p.confidence,
                "top": [{"digit": d, "probability": v} for d, v in p.top],
            }
            if p.blank:
                record["blank"] = True
            if p.error:
                record["error"] = p.error
            print(json.dumps(record))
        return
    if all(p.error for p in predictions):
        return  # every file failed: the lines above say why, an empty table would not
    table = Table(header_style="bold")
    table.add_column("image", overflow="fold")
    for column in ("digit", "confidence", "top classes"):
        table.add_column(column)
    for p in predictions:
        if p.blank:
            table.add_row(str(p.path), "-", "-", "blank: no ink found")
        elif p.error is None:
            top = "  ".join(f"{d} {v:.1%}" for d, v in p.top)
            table.add_row(str(p.path), str(p.digit), f"{p.confidence:.1%}", top)
    Console().print(table)


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="predict")
@reports_user_errors
def hydra_main(cfg: DictConfig) -> None:
    """Predict the digit in each image; exit 1 if any image could not be read."""
    silence_known_warnings()
    given = [str(name) for name in (cfg.images if OmegaConf.is_list(cfg.images) else [cfg.images])]
    files = image_files(given)
    if not given:
        raise DigitsError(
            "images=[] is empty: give image files or folders, e.g. images=[a.png,photos/]"
        )
    if not files:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise DigitsError(f"images=[{','.join(given)}]: no image files there ({suffixes})")
    trainer = instantiate(
        cfg.trainer, logger=False, enable_progress_bar=False, enable_checkpointing=False
    )
    save_dir = Path(cfg.save_preprocessed) if cfg.save_preprocessed else None
    predictions = Predictor(cfg.ckpt_path, trainer)(
        files, cfg.preprocess, cfg.top_k, cfg.batch_size, save_dir
    )
    report(predictions, cfg.output)
    if any(p.error for p in predictions):
        sys.exit(1)


def main() -> None:
    """`python -m digits.predict`: check the command line, then run."""
    launch("predict", hydra_main, check_predict)


if __name__ == "__main__":
    main()
