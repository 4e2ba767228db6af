"""What every data option shares: a LightningDataModule whose images are held decoded in memory
(uint8, N x 28 x 28, white ink on black) and batched by index, converted to 0-1 floats (and
augmented) per batch on the device the model runs on. On a GPU (`on_device`), the uint8 tensors
themselves move to the GPU once, so each batch is indexed there: no images cross from the host per
step. Normalisation is the model's own (digits.models.classifier). Lightning's samplers (shuffle,
DistributedSampler, limit_*_batches) still apply: batches are drawn by an ordinary DataLoader over
index lists.

A data option (digits.data.mnist; digits.data.folder and .usps through `HeldOutSplits`) fills
`train_set`, `val_set` and `test_set` in `setup`, and says what the run read (`provenance`) and
which test images it was (`test_set_id`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only
from torch.utils.data import DataLoader, Dataset

from digits.config.schema import Nested, schema_of
from digits.constraints import AT_LEAST_ONE, NOT_NEGATIVE, OneOf, Range
from digits.data.augment import augment
from digits.data.batches import EpochShuffle, ResumableLoader, TensorImages, keep_batch
from digits.data.idx import tensors_md5
from digits.data.split import stratified_split
from digits.errors import DigitsError
from digits.reading.preprocess import FIELD

log = logging.getLogger(__name__)
Split = tuple[torch.Tensor, torch.Tensor]  # uint8 images (N, 28, 28), int64 labels

# The settings every data option takes, typed once (each option's constructor names them).
BatchSize = Annotated[int, AT_LEAST_ONE]
NumWorkers = Annotated[int, NOT_NEGATIVE]
OnDevice = Annotated[bool | str, OneOf(("auto", "true", "false"))]
# The share of an option's labelled images held out (validation, test), stratified by label.
Fraction = Annotated[float, Range(gt=0, lt=1, note="a share of the images, stratified by label")]
# data.augment: a mapping of `augment`'s own settings (its annotations declare them), or null.
Augment = Annotated[
    Mapping[str, Any] | None,
    Nested(
        schema_of(augment, leave_out=("images", "labels")),
        example="{rotation:10,translate:0.1,scale:[0.9,1.1]}",
    ),
]


class DigitsDataModule(L.LightningDataModule):
    """The batching of every data option; subclasses read their files. Their constructors declare
    the settings of conf/data/<option>.yaml (batch_size, num_workers, pin_memory, augment and
    on_device among them), and save them with `save_hyperparameters`. `LABELLED`: whether its
    images have labels (train, validation and test need them; digits.adapt does not); `STRIPS`:
    whether each item is a strip of several digits (data=numbers) rather than one digit."""

    LABELLED: ClassVar[bool] = True
    STRIPS: ClassVar[bool] = False  # strips of several digits (a sequence reader's), not one each

    def __init__(self) -> None:
        super().__init__()
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    @property
    def in_memory(self) -> bool:
        """Whether batches come from TensorImages (uint8, converted per batch)."""
        return True

    def training_images(self) -> int:
        """How many images train (after prepare_data): the up-front check counts batches by it."""
        raise NotImplementedError

    def test_set_id(self) -> dict[str, Any]:
        """Which test images these are (their count and a digest): runs tested on different images
        are never compared image by image."""
        raise NotImplementedError

    @classmethod
    def provenance(cls, settings: Mapping[str, Any]) -> dict[str, Any]:
        """What a run with these settings reads, for its manifest.json (where, and a digest of
        the files: `md5`)."""
        raise NotImplementedError

    def source_slices(self, split: str) -> dict[str, slice]:
        """Where each source's images are in a split ("val", "test"), for an option of several
        (data=mix); none for an option of one."""
        return {}

    @property
    def device(self) -> torch.device:
        """Where the in-memory images live: the model's device when `on_device` says so (auto: a
        GPU), else the host."""
        if self.trainer is None or not self.in_memory:
            return torch.device("cpu")
        device = self.trainer.strategy.root_device
        wanted = self.hparams.on_device
        return (
            device
            if wanted is True or (wanted == "auto" and device.type == "cuda")
            else torch.device("cpu")
        )

    def in_memory_set(self, images: torch.Tensor, labels: torch.Tensor) -> TensorImages:
        return TensorImages(images.to(self.device), labels.to(self.device))

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
            collate_fn=keep_batch if self.in_memory else None,
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
        if not self.in_memory:
            return images, labels  # torchvision's ToTensor already did it, per sample
        images = images.unsqueeze(1).float().div_(255.0)
        if self.hparams.augment and self.trainer is not None and self.trainer.training:
            images = augment(images, labels, **self.hparams.augment)
        return images, labels


class HeldOutSplits(DigitsDataModule):
    """A data option read whole into memory: its labelled images (`read`), validation and test
    held out of them by a seeded split stratified by label (`val_fraction`, `test_fraction`),
    unless `read` gives a test set of its own. Prints each split's images per digit."""

    def __init__(self) -> None:
        super().__init__()
        self._splits: dict[str, Split] | None = None

    def read(self) -> tuple[Split, Split | None]:
        """(the labelled images to split, a test set of their own or None), read once."""
        raise NotImplementedError

    def splits(self) -> dict[str, Split]:
        """train, val and test (uint8 images and labels), read and split once."""
        if self._splits is None:
            (images, labels), test = self.read()
            for split in (images, labels), test:
                if split is not None:
                    keeps_contract(type(self), *split)
            hp = self.hparams
            test_fraction = 0.0 if test is not None else hp.test_fraction
            train, val, held = stratified_split(
                labels, hp.val_fraction, test_fraction, hp.split_seed
            )
            self._splits = {
                "train": (images[train], labels[train]),
                "val": (images[val], labels[val]),
                "test": test if test is not None else (images[held], labels[held]),
            }
        return self._splits

    def prepare_data(self) -> None:
        self.splits()

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        splits = self.splits()
        self.train_set, self.val_set, self.test_set = (
            self.in_memory_set(*splits[name]) for name in ("train", "val", "test")
        )
        show_class_counts(splits)

    def training_images(self) -> int:
        return len(self.splits()["train"][1])

    def test_set_id(self) -> dict[str, Any]:
        return {"md5": tensors_md5(*self.splits()["test"])}


def keeps_contract(option: type, images: Any, labels: Any) -> None:
    """What `read` gives must be what the model takes: uint8 images (N, 28, 28), white ink on
    black, and int64 labels 0-9, one each (a data module of your own is held to it in one line)."""
    where = f"data._target_={option.__module__}.{option.__qualname__}: read() gives"
    if not (is_tensor(images, torch.uint8) and images.shape[1:] == (FIELD, FIELD)):
        raise DigitsError(
            f"{where} images as {described(images)}; the input contract is uint8 (N, {FIELD}, "
            f"{FIELD}), white ink on black"
        )
    if not (is_tensor(labels, torch.int64) and labels.shape == images.shape[:1]):
        raise DigitsError(
            f"{where} labels as {described(labels)}; they are int64 ({len(images)},), one per image"
        )
    outside = labels[(labels < 0) | (labels > 9)]
    if len(outside):
        raise DigitsError(f"{where} a label {outside[0].item()}; labels are digits 0-9")


def is_tensor(value: Any, dtype: torch.dtype) -> bool:
    return isinstance(value, torch.Tensor) and value.dtype == dtype


def described(value: Any) -> str:
    """A tensor's dtype and shape, or what else it is, for an error line."""
    if isinstance(value, torch.Tensor):
        return f"{value.dtype} {tuple(value.shape)}"
    return type(value).__name__


@rank_zero_only
def show_class_counts(splits: Mapping[str, Split]) -> None:
    """A line per split: how many images of each digit it holds (once, however many processes)."""
    lines = []
    for name, (_, labels) in splits.items():
        counts = Counter(labels.tolist())
        shown = " ".join(f"{digit}:{counts.get(digit, 0)}" for digit in range(10))
        lines.append(f"{name:>5} {len(labels):>6} images  {shown}")
    log.info("images per digit\n%s", "\n".join(lines))
