"""MNIST as a data option: its four IDX files (torchvision's layout under `root`), a seeded
train/validation split of the 60,000 training images, the official 10,000 test images.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar

from torch.utils.data import Subset
from torchvision import transforms
from torchvision.datasets import MNIST

from digits.config.schema import schema_of, store_schemas
from digits.constraints import NOT_NEGATIVE, SEED, OneOf, Range
from digits.data.datamodule import (
    Augment,
    BatchSize,
    DigitsDataModule,
    NumWorkers,
    OnDevice,
)
from digits.data.idx import (
    OFFICIAL_MD5,
    RAW_FILES,
    TRAIN_IMAGES,
    check_mnist,
    check_raw_files,
    ensure_mnist,
    file_md5,
    load_mnist,
    raw_folder,
    split_md5,
)
from digits.data.split import check_folds, split_indices
from digits.errors import DigitsError


class MNISTDataModule(DigitsDataModule):
    """MNIST with a seeded train/validation split of the 60,000 training images (a hold-out of
    `val_size`, or fold `fold` of `folds`: digits.data.split) and the official 10,000 test images.
    Batches are (images, labels): images 0-1 floats (N, 1, 28, 28), white ink on black. `pipeline`:
    memory (decoded once, batched by index: fast) or torchvision (the tutorials' per-sample PIL ->
    ToTensor, kept for comparison). Its arguments are conf/data/mnist.yaml's settings, each
    declared here (the schema is derived from them and stored below)."""

    # Settings another one makes unused: given together on a command line, they are refused.
    UNUSED_WITH: ClassVar = {
        "val_size": ("folds", "each fold validates on 1/data.folds of the training images")
    }

    def __init__(
        self,
        root: str,
        download: bool,
        batch_size: BatchSize,
        val_size: Annotated[
            int,
            Range(
                ge=1, lt=TRAIN_IMAGES, note=f"taken from MNIST's {TRAIN_IMAGES:,} training images"
            ),
        ],
        split_seed: Annotated[int, SEED],
        num_workers: NumWorkers,
        pin_memory: bool,
        augment: Augment,
        pipeline: Annotated[str, OneOf(("memory", "torchvision"))],
        on_device: OnDevice,
        # None: checkpoints of runs made before k-fold have no such settings.
        folds: Annotated[
            int | None,
            Range(ge=2, le=TRAIN_IMAGES, note="k-fold cross-validation of the training images"),
        ] = None,
        fold: Annotated[int | None, NOT_NEGATIVE] = None,
    ) -> None:
        super().__init__()
        check_folds(folds, fold)
        if augment and pipeline != "memory":
            raise DigitsError(
                "data.augment works on the in-memory pipeline: set data.pipeline=memory"
            )
        if on_device is True and pipeline != "memory":
            raise DigitsError(
                "data.on_device=true keeps the in-memory images on the device: set "
                "data.pipeline=memory"
            )
        self.save_hyperparameters()
        self.root = Path(root).expanduser()

    @property
    def in_memory(self) -> bool:
        return self.hparams.pipeline == "memory"

    def prepare_data(self) -> None:
        """Make sure the four IDX files exist, downloading them with torchvision if allowed."""
        ensure_mnist(self.root, self.hparams.download)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None and self.test_set is None:
            check_raw_files(raw_folder(self.root))
        if stage in (None, "fit", "validate") and self.train_set is None:
            self._setup_train_and_val()
        if stage in (None, "test", "predict") and self.test_set is None:
            if self.in_memory:
                self.test_set = self.in_memory_set(*load_mnist(self.root, train=False))
            else:
                self.test_set = self._torchvision_dataset(train=False)

    def _setup_train_and_val(self) -> None:
        images, labels = load_mnist(self.root, train=True)
        train_idx, val_idx = split_indices(
            len(labels),
            self.hparams.val_size,
            self.hparams.split_seed,
            self.hparams.folds,
            self.hparams.fold,
            str(self.root),
        )
        if self.in_memory:
            self.train_set = self.in_memory_set(images[train_idx], labels[train_idx])
            self.val_set = self.in_memory_set(images[val_idx], labels[val_idx])
        else:
            full = self._torchvision_dataset(train=True)
            self.train_set = Subset(full, train_idx.tolist())
            self.val_set = Subset(full, val_idx.tolist())

    def _torchvision_dataset(self, train: bool) -> MNIST:
        return MNIST(str(self.root), train=train, transform=transforms.ToTensor())

    def training_images(self) -> int:
        """The training images left once validation is split off (the IDX headers checked)."""
        split = (self.hparams.val_size, self.hparams.split_seed, self.hparams.folds)
        count = check_mnist(self.root)
        return len(split_indices(count, *split, self.hparams.fold, str(self.root))[0])

    def test_set_id(self) -> dict[str, Any]:
        return {"md5": split_md5(self.root, train=False)}

    @classmethod
    def provenance(cls, settings: Mapping[str, Any]) -> dict[str, Any]:
        """The MD5 of each MNIST file under `root`, and whether all are the official files."""
        raw = raw_folder(settings["root"])
        files = {name: file_md5(raw / name) for name in RAW_FILES if (raw / name).is_file()}
        return {
            "root": str(Path(settings["root"]).expanduser().resolve()),
            "md5": files,
            "official": bool(files) and all(OFFICIAL_MD5[n] == h for n, h in files.items()),
        }


# conf/data/'s schema: the constructor's arguments are its settings.
store_schemas(data_mnist=schema_of(MNISTDataModule, target=True, plumbing=("_convert_",)))
