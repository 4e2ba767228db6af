"""Classify your own images: `python -m digits.predict ckpt_path=<file> images=[a.png,photos/]`.

Each image is preprocessed the way MNIST was made (see digits.preprocess), normalised as in training,
and classified in batches by a model loaded once. Prints the digit, its confidence and the top-k
classes per image (`output=json` for JSON lines). Unreadable files are reported one line each and
the rest still predicted; the exit status is 1 if any image failed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig
from PIL import Image
from rich.console import Console
from rich.table import Table

from digits import config_dir
from digits.checkpoints import datamodule_from, model_from, read_checkpoint
from digits.errors import DigitsError
from digits.preprocess import PREPROCESSORS, BlankImage, load_grayscale
from digits.utils import launch, reports_user_errors

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
OUTPUTS = ("table", "json")


@dataclass
class Prediction:
    path: Path
    digit: int | None = None
    confidence: float | None = None
    top: list[tuple[int, float]] = field(default_factory=list)
    error: str | None = None
    blank: bool = False


def expand(paths: Iterable[str]) -> list[Path]:
    """Files as given, folders as the image files inside them (sorted)."""
    files: list[Path] = []
    for name in paths:
        path = Path(name).expanduser()
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            files.append(path)
    return files


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


class Predictor:
    """A trained model, loaded once, with the normalisation it was trained with."""

    def __init__(self, ckpt_path: str | Path, device: str = "cpu") -> None:
        checkpoint = read_checkpoint(ckpt_path)
        data = datamodule_from(checkpoint).hparams
        self.mean, self.std = data.mean, data.std
        self.model = model_from(checkpoint, device)
        self.device = device

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Class probabilities for (N, 28, 28) images in 0-1, white ink on black."""
        batches = [
            self.model(((chunk.to(self.device) - self.mean) / self.std).unsqueeze(1))
            .softmax(dim=1)
            .cpu()
            for chunk in images.split(batch_size)
        ]
        return torch.cat(batches) if batches else torch.empty(0, 10)

    def __call__(
        self,
        files: list[Path],
        preprocess: str,
        top_k: int,
        batch_size: int = 256,
        save_dir: Path | None = None,
    ) -> list[Prediction]:
        """Preprocess and classify every file; failures are recorded on their Prediction."""
        if preprocess not in PREPROCESSORS:
            raise DigitsError(f"preprocess={preprocess}: use one of {', '.join(PREPROCESSORS)}")
        predictions, images = prepare(files, PREPROCESSORS[preprocess])
        stacked = torch.stack(images) if images else torch.empty(0, 28, 28)
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
    if cfg.output not in OUTPUTS:
        raise DigitsError(f"output={cfg.output}: use one of {', '.join(OUTPUTS)}")
    files = expand([cfg.images] if isinstance(cfg.images, str) else cfg.images)
    if not files:
        raise DigitsError("images=[...] is empty: give image files or folders")
    predictor = Predictor(cfg.ckpt_path, "cuda" if cfg.accelerator == "gpu" else "cpu")
    save_dir = Path(cfg.save_preprocessed) if cfg.save_preprocessed else None
    predictions = predictor(files, cfg.preprocess, cfg.top_k, cfg.batch_size, save_dir)
    report(predictions, cfg.output)
    if any(p.error for p in predictions):
        sys.exit(1)


def main() -> None:
    """`python -m digits.predict`: check the command line, then run."""
    launch("predict", hydra_main)


if __name__ == "__main__":
    main()
