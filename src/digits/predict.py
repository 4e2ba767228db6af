"""Classify your own images: `python -m digits.predict ckpt_path=<file> images=[a.png,photos/]`.

Each image is classified by the model (digits.inference: a checkpoint through Lightning's predict
loop, or an exported .onnx file on onnxruntime, a faster start). Prints the digit, its confidence
and the top-k classes per image (`output=json` for JSON lines); `mode=number` reads every digit of a
number or a sheet. Unreadable files are reported one line each and the rest still predicted; the
exit status is 2 if any image failed.
"""

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
from hydra.utils import instantiate
from omegaconf import MISSING, DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

import digits.training.settings  # noqa: F401  (the trainer group's schema, for conf/predict.yaml)
from digits.cli import launch, silence_known_warnings
from digits.config import config_dir
from digits.config.machine import check_writable
from digits.config.schema import setting, store_schemas
from digits.constraints import AT_LEAST_ONE, OneOf
from digits.errors import DigitsError, reports_user_errors
from digits.exported.onnx_model import is_onnx
from digits.inference.prediction import (
    CONFIDENCE,
    MODES,
    READ_TIMEOUT,
    READERS,
    TOP_K,
    Prediction,
)
from digits.inference.predictor import Predictor
from digits.presentation.photos import annotate
from digits.reading.images import IMAGE_SUFFIXES, image_files
from digits.reading.preprocess import PREPROCESSORS


@dataclass
class PredictConfig:
    trainer: Any = None  # none for an .onnx file (digits.predict.main)
    ckpt_path: str = MISSING
    images: Any = MISSING  # a file or folder, or a list of them
    preprocess: str = setting(OneOf(tuple(PREPROCESSORS)))
    output: str = setting(OneOf(("table", "json")))
    top_k: int = setting(TOP_K)
    min_confidence: float = setting(CONFIDENCE)
    save_preprocessed: str | None = MISSING
    batch_size: int = setting(AT_LEAST_ONE)
    mode: str = setting(OneOf(MODES))
    reader: str = setting(OneOf(READERS))
    annotate: str | None = MISSING
    read_timeout_s: float = setting(READ_TIMEOUT)


store_schemas(predict=PredictConfig)


def image_names(images: Any) -> list[str]:
    """The files and folders `images=` names: at least one, each by name."""
    given = OmegaConf.to_object(images) if OmegaConf.is_config(images) else images
    names = given if isinstance(given, list) else [given]
    if any(isinstance(name, list | dict) or name in ("", None) for name in names):
        raise DigitsError(
            f"images={given}: give image files and folders by name, e.g. images=[a.png,photos/]"
        )
    if not names:
        raise DigitsError(
            "images=[] is empty: give image files or folders, e.g. images=[a.png,photos/]"
        )
    return [str(name) for name in names]


def check_predict(cfg: DictConfig) -> None:
    """Images given as file and folder names; where the preprocessed images go must be writable
    before any image is read; no Trainer settings for an .onnx file."""
    if is_onnx(cfg.ckpt_path) and cfg.trainer is not None:
        raise DigitsError(
            f"ckpt_path={cfg.ckpt_path}: an .onnx file runs on onnxruntime (CPU), not through "
            "Lightning's Trainer; leave out the trainer settings"
        )
    if cfg.trainer is not None and cfg.trainer.devices not in (1, "1"):
        raise DigitsError(
            f"trainer.devices={cfg.trainer.devices}: predict runs on one device; use "
            "trainer.devices=1"
        )
    image_names(cfg.images)
    if cfg.mode != "digit" and cfg.preprocess == "naive":
        raise DigitsError(
            f"preprocess=naive: mode={cfg.mode} finds digits with MNIST's recipe; "
            "use mnist or mnist_v1"
        )
    if cfg.reader == "sequence" and cfg.mode != "number":
        raise DigitsError(
            f"reader=sequence reads rows of digits whole: use mode=number (not mode={cfg.mode})"
        )
    if cfg.annotate and cfg.mode == "digit":
        raise DigitsError(
            f"annotate={cfg.annotate}: draws the digits found by mode=number or mode=auto; add one"
        )
    for key in ("save_preprocessed", "annotate"):
        if cfg[key]:
            check_writable(cfg[key], key, "choose a writable folder, or leave it out")


def print_predictions(predictions: list[Prediction], output: str) -> None:
    """Each failure on stderr; the readings as a table, or as JSON lines (output=json)."""
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
        print_numbers(predictions)
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


def print_numbers(predictions: list[Prediction]) -> None:
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
    given = image_names(cfg.images)
    files = image_files(given)
    if not files:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise DigitsError(f"images=[{','.join(given)}]: no image files there ({suffixes})")
    quiet = {"logger": False, "enable_progress_bar": False, "enable_checkpointing": False}
    trainer = instantiate(cfg.trainer, **quiet) if cfg.trainer is not None else None
    save_dir = Path(cfg.save_preprocessed) if cfg.save_preprocessed else None
    predictions = Predictor(cfg.ckpt_path, trainer, cfg.reader)(
        files,
        cfg.preprocess,
        cfg.top_k,
        cfg.batch_size,
        save_dir,
        cfg.min_confidence,
        cfg.mode,
        cfg.read_timeout_s,
    )
    if cfg.annotate:
        for p in predictions:
            if p.digits:
                annotate(p.path, [(d.box, d.digit) for d in p.digits], Path(cfg.annotate))
    print_predictions(predictions, cfg.output)
    if any(p.error for p in predictions):
        sys.exit(DigitsError.exit_code)


def main() -> None:
    """`python -m digits.predict`: check the command line, then run (an .onnx file with no Trainer
    composed: no Lightning imported)."""
    args = sys.argv[1:]
    onnx_given = any(a.startswith("ckpt_path=") and is_onnx(a.split("=", 1)[1]) for a in args)
    if onnx_given and not any(a.lstrip("+~").startswith("trainer") for a in args):
        sys.argv.append("~trainer")
    launch("predict", hydra_main, check_predict)


if __name__ == "__main__":
    main()
