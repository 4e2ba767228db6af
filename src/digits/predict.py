"""Classify your own images: `python -m digits.predict ckpt_path=<file> images=[a.png,photos/]`.

Each image is preprocessed the way MNIST was made (see digits.reading.preprocess) and classified by
the checkpoint's model, loaded once, through Lightning's predict loop; an exported .onnx file runs
on onnxruntime instead, without importing Lightning (a faster start). Prints the digit, its
confidence and the top-k classes per image (`output=json` for JSON lines); `mode=number` reads every
digit of a number or a sheet (digits.reading.segment). Unreadable files are
reported one line each and the rest still predicted; the exit status is 2 if any image failed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

import hydra
import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from PIL import Image, ImageDraw, ImageFont
from rich.console import Console
from rich.table import Table
from torch.utils.data import DataLoader

from digits.cli import launch, reports_user_errors, silence_known_warnings
from digits.config import config_dir
from digits.config.checks import check_predict
from digits.errors import DigitsError
from digits.exported.onnx_model import OnnxModel, is_onnx
from digits.models.networks import NUM_CLASSES
from digits.reading.images import IMAGE_SUFFIXES, image_files, load_grayscale
from digits.reading.preprocess import FIELD, PREPROCESSORS, BlankImage
from digits.reading.segment import Box, Classifier, digits_in

if TYPE_CHECKING:
    import lightning as L

Read = TypeVar("Read")  # what a preprocessing makes of an image: one 28x28 digit, or a number's


@dataclass
class Prediction:
    path: Path
    digit: int | None = None
    confidence: float | None = None
    top: list[tuple[int, float]] = field(default_factory=list)
    error: str | None = None
    blank: bool = False
    unsure: bool = False  # confidence below min_confidence: no digit, the top two instead
    # mode=number: every digit found, in reading order (each with its box and row), else None.
    digits: list[Prediction] | None = None
    box: Box | None = None
    row: int = 0

    @property
    def text(self) -> str:
        """The digits read, "?" where unsure, one line per row (mode=digit: the one digit)."""
        if self.blank or self.error:
            return ""
        rows: dict[int, str] = {}
        for d in self.digits if self.digits is not None else [self]:
            rows[d.row] = rows.get(d.row, "") + ("?" if d.digit is None else str(d.digit))
        return "\n".join(rows.values())

    def record(self) -> dict[str, Any]:
        """The prediction as `output=json` prints it (and `digits.serve` answers it)."""
        if self.digits is not None:
            return self._number_record()
        record = {
            "file": str(self.path),
            "digit": self.digit,
            "confidence": self.confidence,
            "top": [{"digit": d, "probability": v} for d, v in self.top],
        }
        if self.blank:
            record["blank"] = True
        if self.unsure:
            record["unsure"] = True
        if self.error:
            record["error"] = self.error
        return record

    def _number_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"file": str(self.path), "text": self.text, "digits": []}
        for d in self.digits or []:
            box = {"top": d.box.top, "left": d.box.left, "bottom": d.box.bottom,
                   "right": d.box.right} if d.box else None  # fmt: skip
            record["digits"].append(
                {"box": box, "row": d.row} | {k: v for k, v in d.record().items() if k != "file"}
            )
        if self.blank:
            record["blank"] = True
        if self.error:
            record["error"] = self.error
        return record


def preprocessed(
    path: Path, preprocess: Callable[[np.ndarray], Read], stream: BinaryIO | None = None
) -> Read:
    """What `preprocess` makes of an image file (the 28x28 image the network sees, or a number's
    digits), or of an upload's `stream`, named `path`. Raises BlankImage, or DigitsError naming
    the file."""
    if stream is None and not path.is_file():
        raise DigitsError(f"{path}: no such file")
    return preprocess(load_grayscale(path, stream))


def prepare(
    files: list[Path], preprocess: Callable[[np.ndarray], torch.Tensor]
) -> tuple[list[Prediction], list[torch.Tensor]]:
    """One Prediction per file; the 28x28 tensors of those that could be preprocessed."""
    predictions, images = [], []
    for path in files:
        prediction = Prediction(path)
        predictions.append(prediction)
        try:
            images.append(preprocessed(path, preprocess))
        except BlankImage:
            prediction.blank = True
        except DigitsError as error:
            prediction.error = str(error)
    return predictions, images


def read_number(
    path: Path, gray: np.ndarray, preprocess: str, classify: Classifier | None, auto: bool = False
) -> tuple[Prediction, list[torch.Tensor]]:
    """mode=number on one image (grayscale 0-255): its Prediction, holding one per digit found,
    and the digits' 28x28 images, in the same order (`classify` decides where touching digits
    are cut, see digits.reading.segment; preprocess=mnist_v1 leaves the strokes as they are).
    `auto`: an image in which no more than one digit is found is read as mode=digit reads it (a
    Prediction with no `digits`, and its one image). Raises BlankImage."""
    found = digits_in(gray, normalise_strokes=preprocess == "mnist", classify=classify)
    if auto and len(found) <= 1:
        return Prediction(path), [PREPROCESSORS[preprocess](gray)]
    digits = [Prediction(path, box=d.box, row=d.row) for d in found]
    return Prediction(path, digits=digits), [d.image for d in found]


def prepare_numbers(
    files: list[Path], preprocess: str, classify: Classifier | None = None, auto: bool = False
) -> tuple[list[Prediction], list[torch.Tensor]]:
    """`read_number` for every file: one Prediction per file (failures recorded on it), and the
    28x28 images of every digit, in the same order."""
    predictions, images = [], []
    for path in files:
        try:
            prediction, found = read_number(
                path, preprocessed(path, np.asarray), preprocess, classify, auto
            )
            images += found
        except BlankImage:
            prediction = Prediction(path, digits=[], blank=True)
        except DigitsError as error:
            prediction = Prediction(path, digits=[], error=str(error))
        predictions.append(prediction)
    return predictions, images


def to_classify(predictions: list[Prediction]) -> list[Prediction]:
    """What is classified for each prediction, in order: its digits (a number) or itself."""
    return [d for p in predictions for d in (p.digits if p.digits is not None else [p])]


def annotate(prediction: Prediction, out_dir: Path) -> Path:
    """The photo with each digit's box and reading drawn on it, as <out_dir>/<name>.png."""
    image = Image.fromarray(load_grayscale(prediction.path).clip(0, 255).astype(np.uint8))
    image = image.convert("RGB")
    draw = ImageDraw.Draw(image)
    for d in prediction.digits or []:
        if d.box is None:
            continue
        colour = (220, 120, 0) if d.digit is None else (0, 150, 60)
        draw.rectangle((d.box.left, d.box.top, d.box.right, d.box.bottom), outline=colour, width=2)
        size = max(10, (d.box.bottom - d.box.top) // 3)
        label = "?" if d.digit is None else str(d.digit)
        font = ImageFont.load_default(size=size)
        draw.text((d.box.left, max(0, d.box.top - size - 2)), label, fill=colour, font=font)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{prediction.path.stem}.png"
    image.save(path)
    return path


def quiet_trainer() -> L.Trainer:
    """A Trainer for inference that prints and writes nothing (for tools; the CLI uses conf/trainer)."""
    import lightning as L

    return L.Trainer(devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False)


class CheckpointModel:
    """A checkpoint's model, run by a Lightning Trainer's predict loop."""

    def __init__(self, ckpt_path: str | Path, trainer: L.Trainer | None = None) -> None:
        from digits.models.checkpoint import load_classifier  # Lightning: only for checkpoints

        self.model = load_classifier(ckpt_path)
        self.trainer = trainer or quiet_trainer()

    def probabilities(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Class probabilities (N, 10) for 0-1 images (N, 1, 28, 28), white ink on black."""
        loader = DataLoader(images, batch_size=batch_size)
        return torch.cat(self.trainer.predict(self.model, dataloaders=loader)).float().cpu()


class Predictor:
    """A model loaded once: from a checkpoint (.ckpt) or an exported ONNX file (.onnx), or given."""

    def __init__(
        self, model: str | Path | OnnxModel | CheckpointModel, trainer: L.Trainer | None = None
    ) -> None:
        if isinstance(model, str | Path):
            model = OnnxModel(model) if is_onnx(model) else CheckpointModel(model, trainer)
        self.model = model

    def probabilities(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Class probabilities for (N, 28, 28) images in 0-1, white ink on black."""
        if not len(images):
            return torch.empty(0, NUM_CLASSES)
        return self.model.probabilities(images.unsqueeze(1), batch_size)

    def __call__(
        self,
        files: list[Path],
        preprocess: str,
        top_k: int,
        batch_size: int = 256,
        save_dir: Path | None = None,
        min_confidence: float = 0.0,
        mode: str = "digit",
    ) -> list[Prediction]:
        """Preprocess and classify every file (mode=number: every digit in it; auto: every digit
        of the files holding several); failures are recorded on their Prediction."""
        if mode == "digit":
            predictions, images = prepare(files, PREPROCESSORS[preprocess])
        else:
            auto = mode == "auto"
            predictions, images = prepare_numbers(files, preprocess, self.probabilities, auto)
        stacked = torch.stack(images) if images else torch.empty(0, FIELD, FIELD)
        ok = self.classify(to_classify(predictions), stacked, top_k, batch_size, min_confidence)
        if save_dir is not None:
            save_dir.mkdir(parents=True, exist_ok=True)
            for index, (prediction, image) in enumerate(zip(ok, stacked, strict=True)):
                name = prediction.path.stem + (f"-{index:03d}" if mode != "digit" else "")
                to_png(image).save(save_dir / f"{name}.png")
        return predictions

    def classify(
        self,
        predictions: list[Prediction],
        images: torch.Tensor,
        top_k: int,
        batch_size: int = 256,
        min_confidence: float = 0.0,
    ) -> list[Prediction]:
        """Fill in the predictions that have an image (not blank, no error) from `images`, one per
        such prediction, in order; returns those predictions. Below `min_confidence` a prediction
        is unsure: no digit, and at least the top two classes."""
        ok = [p for p in predictions if p.error is None and not p.blank]
        for prediction, probs in zip(ok, self.probabilities(images, batch_size), strict=True):
            values, digits = probs.topk(max(top_k, 2))
            top = [(int(d), float(v)) for d, v in zip(digits, values, strict=True)]
            prediction.confidence = top[0][1]
            prediction.unsure = prediction.confidence < min_confidence
            prediction.digit = None if prediction.unsure else top[0][0]
            prediction.top = top if prediction.unsure else top[:top_k]
        return ok


def to_png(image: torch.Tensor) -> Image.Image:
    """A 28x28 0-1 image as the 8-bit grayscale picture the network saw."""
    return Image.fromarray((image * 255).round().byte().numpy())


def report(predictions: list[Prediction], output: str) -> None:
    for prediction in predictions:
        if prediction.error:
            print(f"error: {prediction.error}", file=sys.stderr)
    if output == "json":
        for p in predictions:
            print(json.dumps(p.record()))
        return
    if all(p.error for p in predictions):
        return  # every file failed: the lines above say why, an empty table would not
    if any(p.digits is not None for p in predictions):
        report_numbers(predictions)
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
            digit = "unsure" if p.unsure else str(p.digit)
            table.add_row(str(p.path), digit, f"{p.confidence:.1%}", top)
    Console().print(table)


def report_numbers(predictions: list[Prediction]) -> None:
    table = Table(header_style="bold")
    table.add_column("image", overflow="fold")
    table.add_column("read")
    table.add_column("digits (confidence)", overflow="fold")
    for p in predictions:
        if p.blank:
            table.add_row(str(p.path), "-", "blank: no ink found")
        elif p.digits is None and p.error is None:  # mode=auto found one digit
            read = "unsure" if p.unsure else str(p.digit)
            table.add_row(str(p.path), read, "  ".join(f"{d} {v:.0%}" for d, v in p.top))
        elif p.error is None:
            each = "  ".join(
                f"{'?' if d.digit is None else d.digit} {d.confidence:.0%}" for d in p.digits
            )
            table.add_row(str(p.path), p.text, each)
    Console().print(table)


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="predict")
@reports_user_errors
def hydra_main(cfg: DictConfig) -> None:
    """Predict the digit in each image; exit 2 (a user's mistake) if any image could not be read."""
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
    if is_onnx(cfg.ckpt_path):
        model = OnnxModel(cfg.ckpt_path)
    else:
        quiet = {"logger": False, "enable_progress_bar": False, "enable_checkpointing": False}
        model = CheckpointModel(cfg.ckpt_path, instantiate(cfg.trainer, **quiet))
    save_dir = Path(cfg.save_preprocessed) if cfg.save_preprocessed else None
    predictions = Predictor(model)(
        files, cfg.preprocess, cfg.top_k, cfg.batch_size, save_dir, cfg.min_confidence, cfg.mode
    )
    if cfg.annotate:
        for prediction in predictions:
            if prediction.digits:
                annotate(prediction, Path(cfg.annotate))
    report(predictions, cfg.output)
    if any(p.error for p in predictions):
        sys.exit(DigitsError.exit_code)


def main() -> None:
    """`python -m digits.predict`: check the command line, then run."""
    args = sys.argv[1:]
    onnx_given = any(a.startswith("ckpt_path=") and is_onnx(a.split("=", 1)[1]) for a in args)
    if onnx_given and not any(a.lstrip("+~").startswith("trainer") for a in args):
        sys.argv.append("~trainer")  # onnxruntime runs it: no Trainer to compose, no Lightning
    launch("predict", hydra_main, check_predict)


if __name__ == "__main__":
    main()
