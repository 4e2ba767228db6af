"""EMNIST's digits as a data option (`data=emnist`): 240,000 training and 40,000 test digits from
NIST's forms, made as MNIST's were, read by torchvision's own `EMNIST` class (split `digits`) from
`root/EMNIST/raw/` (torchvision's layout), downloaded by torchvision where allowed. EMNIST's files
hold each image transposed: they are turned back here, so a digit stands as in MNIST.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from torchvision.datasets import EMNIST

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


def raw_files(root: Path, part: str) -> list[Path]:
    """The two files torchvision's EMNIST reads for the digits' `part` (train or test)."""
    folder = root / "EMNIST" / "raw"
    return [
        folder / f"emnist-digits-{part}-{kind}"
        for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")
    ]


class EMNISTDataModule(HeldOutSplits):
    """EMNIST's digits: the training digits, `val_fraction` of them validating (stratified,
    `split_seed`), and the official test digits. Its arguments are conf/data/emnist.yaml's
    settings."""

    def __init__(
        self,
        root: str,
        download: bool,
        val_fraction: Fraction,
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

    def _part(self, part: str) -> Split:
        found = read_set(
            lambda download: EMNIST(
                str(self.root), split="digits", train=part == "train", download=download
            ),
            raw_files(self.root, part),
            self.hparams.download,
            f"EMNIST's digits, {part}",
        )
        return found.data.transpose(1, 2).contiguous(), found.targets.long()

    def read(self) -> tuple[Split, Split | None]:
        return self._part("train"), self._part("test")

    @classmethod
    def provenance(cls, settings: Mapping[str, Any]) -> dict[str, Any]:
        files = [
            path for part in ("train", "test") for path in raw_files(Path(settings["root"]), part)
        ]
        return files_provenance(settings["root"], files)


# conf/data/emnist.yaml's schema: the constructor's arguments are its settings.
store_schemas(data_emnist=schema_of(EMNISTDataModule, target=True, plumbing=("_convert_",)))
