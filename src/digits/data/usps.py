"""USPS as a data option (`data=usps`): the U.S. Postal Service's 16x16 zip-code digits, read by
torchvision's own `USPS` class from `root` (torchvision's layout: `usps.bz2`, the 7,291 training
digits, and `usps.t.bz2`, the 2,007 test digits), downloaded by torchvision where allowed. Each
digit is put into the 28x28 input contract by MNIST's own rule (digits.reading.preprocess.mnist_rule).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import torch
from torchvision.datasets import USPS

from digits.config.schema import schema_of, store_schemas
from digits.constraints import SEED
from digits.data.datamodule import (
    Augment,
    BatchSize,
    Fraction,
    HeldOutSplits,
    NumWorkers,
    OnDevice,
    Split,
)
from digits.data.torchvision_sets import files_provenance, read_set
from digits.reading.preprocess import mnist_rule

FILES = {"train": "usps.bz2", "test": "usps.t.bz2"}


def in_mnist_layout(digits: torch.Tensor) -> torch.Tensor:
    """USPS's uint8 digits (N, 16, 16), white on black, as uint8 (N, 28, 28) by MNIST's rule."""
    laid_out = [mnist_rule(digit.float() / 255) for digit in digits]
    return (torch.stack(laid_out) * 255).round().to(torch.uint8)


class USPSDataModule(HeldOutSplits):
    """USPS's training digits, `val_fraction` of them validating (stratified, `split_seed`), and
    its official test digits, or `test_fraction` of the training digits held out instead (for a
    copy without the test file). Its arguments are conf/data/usps.yaml's settings."""

    def __init__(
        self,
        root: str,
        download: bool,
        val_fraction: Fraction,
        test_fraction: Fraction | None,
        split_seed: Annotated[int, SEED],
        batch_size: BatchSize,
        num_workers: NumWorkers,
        pin_memory: bool,
        augment: Augment,
        on_device: OnDevice,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.root = Path(root).expanduser()

    def _split(self, name: str) -> Split:
        found = read_set(
            lambda download: USPS(str(self.root), train=name == "train", download=download),
            [self.root / FILES[name]],
            self.hparams.download,
            f"USPS's {name} split",
            "" if name == "train" else ", or hold test digits out: data.test_fraction=0.2",
        )
        return in_mnist_layout(torch.from_numpy(found.data)), torch.tensor(found.targets)

    def read(self) -> tuple[Split, Split | None]:
        """The training digits, and the test digits unless test_fraction holds some out."""
        train = self._split("train")
        return train, self._split("test") if self.hparams.test_fraction is None else None

    @classmethod
    def provenance(cls, settings: Mapping[str, Any]) -> dict[str, Any]:
        root = Path(settings["root"]).expanduser()
        return files_provenance(settings["root"], [root / name for name in FILES.values()])


# conf/data/usps.yaml's schema: the constructor's arguments are its settings.
store_schemas(data_usps=schema_of(USPSDataModule, target=True, plumbing=("_convert_",)))
