"""MNIST as a LightningDataModule.

The default data path keeps the decoded images in one uint8 tensor (60,000x28x28 is 47 MB) and takes
whole batches from it by index; conversion to 0-1 floats (and augmentation) happen per batch on the
device the model runs on. On a GPU (`on_device`), the uint8 tensors themselves move to the GPU once,
so that each batch is indexed there: no images cross from the host per step. Normalisation is the
model's own (see digits.models.classifier).
Lightning's samplers (shuffle, DistributedSampler, limit_*_batches) still apply, because batches are
drawn by an ordinary DataLoader over index lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision import transforms
from torchvision.datasets import MNIST

from digits.config.schema import Nested, schema_of, store_schemas
from digits.constraints import AT_LEAST_ONE, NOT_NEGATIVE, SEED, OneOf, Range
from digits.data.augment import augment
from digits.data.batches import EpochShuffle, ResumableLoader, TensorImages, keep_batch
from digits.data.idx import TRAIN_IMAGES, check_raw_files, ensure_mnist, load_mnist, raw_folder
from digits.data.split import check_folds, split_indices
from digits.errors import DigitsError

# data.augment: a mapping of `augment`'s own settings (its annotations declare them).
AUGMENT = Nested(
    schema_of(augment, leave_out=("images", "labels")),
    example="{rotation:10,translate:0.1,scale:[0.9,1.1]}",
)


class MNISTDataModule(L.LightningDataModule):
    """MNIST with a seeded train/validation split of the 60,000 training images (a hold-out of
    `val_size`, or fold `fold` of `folds`: digits.data.split) and the official 10,000 test images.
    Batches are (images, labels): images 0-1 floats (N, 1, 28, 28), white ink on black. `pipeline`:
    memory (decoded once, batched by index: fast) or torchvision (the tutorials' per-sample PIL ->
    ToTensor, kept for comparison). Its arguments are conf/data/'s settings, each declared here
    (the schema is derived from them and stored below)."""

    # Settings another one makes unused: given together on a command line, they are refused.
    UNUSED_WITH: ClassVar = {
        "val_size": ("folds", "each fold validates on 1/data.folds of the training images")
    }

    def __init__(
        self,
        root: str,
        download: bool,
        batch_size: Annotated[int, AT_LEAST_ONE],
        val_size: Annotated[
            int,
            Range(
                ge=1, lt=TRAIN_IMAGES, note=f"taken from MNIST's {TRAIN_IMAGES:,} training images"
            ),
        ],
        split_seed: Annotated[int, SEED],
        num_workers: Annotated[int, NOT_NEGATIVE],
        pin_memory: bool,
        augment: Annotated[Mapping[str, Any] | None, AUGMENT],
        pipeline: Annotated[str, OneOf(("memory", "torchvision"))],
        on_device: Annotated[bool | str, OneOf(("auto", "true", "false"))],
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
        self.save_hyperparameters()
        self.root = Path(root).expanduser()
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    def prepare_data(self) -> None:
        """Make sure the four IDX files exist, downloading them with torchvision if allowed."""
        ensure_mnist(self.root, self.hparams.download)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None and self.test_set is None:
            check_raw_files(raw_folder(self.root))
        if stage in (None, "fit", "validate") and self.train_set is None:
            self._setup_train_and_val()
        if stage in (None, "test", "predict") and self.test_set is None:
            if self.hparams.pipeline == "memory":
                self.test_set = self._in_memory(*load_mnist(self.root, train=False))
            else:
                self.test_set = self._torchvision_dataset(train=False)

    @property
    def device(self) -> torch.device:
        """Where the in-memory images live: the model's device when `on_device` says so (auto: a
        GPU), else the host."""
        if self.trainer is None or self.hparams.pipeline != "memory":
            return torch.device("cpu")
        device = self.trainer.strategy.root_device
        wanted = self.hparams.on_device
        return (
            device
            if wanted is True or (wanted == "auto" and device.type == "cuda")
            else torch.device("cpu")
        )

    def _in_memory(self, images: torch.Tensor, labels: torch.Tensor) -> TensorImages:
        return TensorImages(images.to(self.device), labels.to(self.device))

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
        if self.hparams.pipeline == "memory":
            self.train_set = self._in_memory(images[train_idx], labels[train_idx])
            self.val_set = self._in_memory(images[val_idx], labels[val_idx])
        else:
            full = self._torchvision_dataset(train=True)
            self.train_set = Subset(full, train_idx.tolist())
            self.val_set = Subset(full, val_idx.tolist())

    def _torchvision_dataset(self, train: bool) -> MNIST:
        return MNIST(str(self.root), train=train, transform=transforms.ToTensor())

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        on_host = self.device.type == "cpu"  # batches of device tensors: no workers, no pinning
        return ResumableLoader(
            dataset,
            batch_size=self.hparams.batch_size,
            # The run's seed (seed_everything sets torch's initial seed) drives the shuffle order.
            sampler=EpochShuffle(dataset, torch.initial_seed()) if shuffle else None,
            # Its own generator: starting an epoch must not draw from the global RNG that dropout
            # uses, or a resumed run would see different dropout masks.
            generator=torch.Generator().manual_seed(torch.initial_seed()),
            collate_fn=keep_batch if self.hparams.pipeline == "memory" else None,
            num_workers=self.hparams.num_workers if on_host else 0,
            pin_memory=self.hparams.pin_memory and torch.cuda.is_available() and on_host,
            persistent_workers=self.hparams.num_workers > 0 and on_host,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)

    def on_after_batch_transfer(
        self, batch: tuple[torch.Tensor, torch.Tensor], dataloader_idx: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images become 0-1 floats (N, 1, 28, 28) on the model's device, randomly
        transformed when training with `augment` set."""
        images, labels = batch
        if self.hparams.pipeline != "memory":
            return images, labels  # torchvision's ToTensor already did it, per sample
        images = images.unsqueeze(1).float().div_(255.0)
        if self.hparams.augment and self.trainer is not None and self.trainer.training:
            images = augment(images, labels, **self.hparams.augment)
        return images, labels


# conf/data/'s schema: the constructor's arguments are its settings.
store_schemas(data=schema_of(MNISTDataModule, target=True, plumbing=("_convert_",)))
