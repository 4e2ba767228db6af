"""Loading what a training run saved: the model and its data settings, from one checkpoint file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from digits.data import MNISTDataModule
from digits.errors import DigitsError
from digits.module import DigitClassifier


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's contents (weights-only load), or a one-line error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DigitsError(f"ckpt_path={path}: no such file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise DigitsError(
            f"ckpt_path={path}: not a readable checkpoint ({error})".split("\n")[0]
        ) from error
    hparams = checkpoint.get("hyper_parameters", {}) if isinstance(checkpoint, dict) else {}
    if "net" not in hparams or "state_dict" not in checkpoint:
        raise DigitsError(f"ckpt_path={path}: not a checkpoint of a digits model")
    return checkpoint


def load_model(path: str | Path, device: torch.device | str = "cpu") -> DigitClassifier:
    """The trained model, in eval mode, on `device`."""
    read_checkpoint(path)
    model = DigitClassifier.load_from_checkpoint(path, map_location=device)
    return model.eval()


def load_datamodule(path: str | Path, **overrides: Any) -> MNISTDataModule:
    """The run's data module (root, split, normalisation), with `overrides` that are not None."""
    saved = read_checkpoint(path).get("datamodule_hyper_parameters")
    if not saved:
        raise DigitsError(
            f"ckpt_path={path}: holds no data settings (trained outside digits.train?)"
        )
    return MNISTDataModule(**(saved | {k: v for k, v in overrides.items() if v is not None}))
