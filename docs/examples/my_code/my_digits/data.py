"""A data module of your own for digits: labelled digits in a NumPy .npz file (`images`: uint8
(N, 28, 28), white ink on black; `labels`: 0-9). digits' HeldOutSplits does the rest: the seeded
stratified validation and test splits, the in-memory batches, augmentation. Its constructor's
arguments are its settings (../conf/data/npz.yaml); the types are digits' own, so they mean what
they mean for digits' options."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from digits.data.datamodule import (
    Augment,
    BatchSize,
    Fraction,
    HeldOutSplits,
    NumWorkers,
    OnDevice,
    Split,
)
from digits.errors import DigitsError


class NpzDigits(HeldOutSplits):
    """The digits of one .npz file, `val_fraction` and `test_fraction` of them held out."""

    def __init__(
        self,
        path: str,
        val_fraction: Fraction,
        test_fraction: Fraction,
        split_seed: int,
        batch_size: BatchSize,
        num_workers: NumWorkers,
        pin_memory: bool,
        augment: Augment,
        on_device: OnDevice,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # plain values: the checkpoint keeps them, evaluate reuses them

    def read(self) -> tuple[Split, Split | None]:
        """(all the labelled digits, no test set of their own: test_fraction is held out)."""
        path = Path(self.hparams.path).expanduser()
        if not path.is_file():  # a DigitsError is one line and exit status 2, as digits' own
            raise DigitsError(f"data.path={path}: no such file")
        with np.load(path) as arrays:
            images = torch.from_numpy(arrays["images"])
            labels = torch.from_numpy(arrays["labels"]).long()
        return (images, labels), None

    @classmethod
    def provenance(cls, settings: Mapping[str, Any]) -> dict[str, Any]:
        """What a run read, for its manifest.json: the file and its MD5."""
        path = Path(settings["path"]).expanduser()
        digest = hashlib.md5(path.read_bytes(), usedforsecurity=False) if path.is_file() else None
        return {"path": str(path.resolve()), "md5": digest.hexdigest() if digest else None}
