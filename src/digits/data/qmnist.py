"""QMNIST as a data option (`data=qmnist`): MNIST's training digits reconstructed from NIST's
originals, and its test part, whose last 50,000 digits (`test50k`) are the test digits MNIST
left out: the most honest check of how an MNIST model generalises. Read by torchvision's own
`QMNIST` class from `root/QMNIST/raw/` (torchvision's layout), downloaded where allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from torchvision.datasets import QMNIST

from digits.config.schema import schema_of, store_schemas
from digits.constraints import SEED, OneOf
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

TEST_PARTS = ("test50k", "test10k", "test")  # the lost 50,000; MNIST's own 10,000; all 60,000


def raw_files(root: Path, part: str) -> list[Path]:
    """The two files torchvision's QMNIST reads for `part` (train, or test for any test part)."""
    folder = root / "QMNIST" / "raw"
    return [folder / f"qmnist-{part}-{kind}" for kind in ("images-idx3-ubyte", "labels-idx2-int")]


class QMNISTDataModule(HeldOutSplits):
    """QMNIST's training digits, `val_fraction` of them validating (stratified, `split_seed`),
    and the test digits of `test_part`. Its arguments are conf/data/qmnist.yaml's settings."""

    def __init__(
        self,
        root: str,
        download: bool,
        test_part: Annotated[str, OneOf(TEST_PARTS)],
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

    def _part(self, what: str) -> Split:
        part = "train" if what == "train" else "test"
        found = read_set(
            lambda download: QMNIST(str(self.root), what=what, download=download),
            raw_files(self.root, part),
            self.hparams.download,
            f"QMNIST's {what}",
        )
        return found.data, found.targets[:, 0].long()  # the other columns: writer, NIST ids

    def read(self) -> tuple[Split, Split | None]:
        return self._part("train"), self._part(self.hparams.test_part)

    @classmethod
    def provenance(cls, settings: Mapping[str, Any]) -> dict[str, Any]:
        files = [
            path for part in ("train", "test") for path in raw_files(Path(settings["root"]), part)
        ]
        return files_provenance(settings["root"], files)


# conf/data/qmnist.yaml's schema: the constructor's arguments are its settings.
store_schemas(data_qmnist=schema_of(QMNISTDataModule, target=True, plumbing=("_convert_",)))
