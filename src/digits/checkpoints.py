"""Loading what a training run saved: the model and its data settings, from one checkpoint file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from digits import config_dir
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
        reason = str(error).split("\n")[0]
        raise DigitsError(f"ckpt_path={path}: not a readable checkpoint ({reason})") from error
    hparams = checkpoint.get("hyper_parameters", {}) if isinstance(checkpoint, dict) else {}
    if "net" not in hparams or "state_dict" not in checkpoint:
        raise DigitsError(f"ckpt_path={path}: not a checkpoint of a digits model")
    checkpoint["path"] = str(path)
    return checkpoint


def model_from(checkpoint: dict[str, Any], device: torch.device | str = "cpu") -> DigitClassifier:
    """The trained model, in eval mode, on `device`."""
    model = DigitClassifier(**checkpoint["hyper_parameters"])
    # Metric states (train sums, val_acc_best) differ between versions and are not needed here.
    missing, unexpected = model.load_state_dict(checkpoint["state_dict"], strict=False)
    broken = [key for key in [*missing, *unexpected] if key.startswith("net.")]
    if broken:
        raise DigitsError(
            f"ckpt_path={checkpoint['path']}: weights do not fit the network ({', '.join(broken[:3])})"
        )
    return model.to(device).eval()


def datamodule_from(checkpoint: dict[str, Any], **overrides: Any) -> MNISTDataModule:
    """The run's data module (root, split, normalisation), with `overrides` that are not None.
    Settings the checkpoint predates come from conf/data/mnist.yaml."""
    saved = checkpoint.get("datamodule_hyper_parameters")
    if not saved:
        raise DigitsError(
            f"ckpt_path={checkpoint['path']}: holds no data settings (trained outside digits.train?)"
        )
    defaults = OmegaConf.to_container(
        OmegaConf.load(Path(config_dir()) / "data" / "mnist.yaml"), resolve=True
    )
    defaults = {key: value for key, value in defaults.items() if not key.startswith("_")}
    given = {key: value for key, value in overrides.items() if value is not None}
    return MNISTDataModule(**(defaults | dict(saved) | given))
