"""MNIST as a LightningDataModule.

The default data path keeps the decoded images in one uint8 tensor (60,000x28x28 is 47 MB) and takes
whole batches from it by index; conversion to float and normalisation happen per batch on the device
the model runs on. Lightning's samplers (shuffle, DistributedSampler, limit_*_batches) still apply,
because batches are drawn by an ordinary DataLoader over index lists.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision.datasets import MNIST

from digits.errors import DigitsError

RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
TRAIN_SIZE = 60_000


class TensorImages(Dataset):
    """Images and labels held in memory; `__getitems__` lets the DataLoader fetch a batch at once."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(indices)
        return self.images[index], self.labels[index]


def keep_batch(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Collate for batches that `TensorImages.__getitems__` already stacked."""
    return batch


def random_affine(
    images: torch.Tensor, rotation: float, translate: float, scale: Sequence[float]
) -> torch.Tensor:
    """Rotate (up to +-rotation degrees), shift (up to +-translate of the size) and scale (within
    `scale`) each image of a (N, 1, H, W) batch independently, in one grid_sample on its device."""
    count, device = images.shape[0], images.device
    angle = (torch.rand(count, device=device) * 2 - 1) * math.radians(rotation)
    zoom = torch.empty(count, device=device).uniform_(scale[0], scale[1])
    shift = (torch.rand(count, 2, device=device) * 2 - 1) * (2 * translate)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, align_corners=False, padding_mode="zeros")


def missing_raw_files(root: str | Path) -> list[str]:
    raw = Path(root) / "MNIST" / "raw"
    return [name for name in RAW_FILES if not (raw / name).is_file()]


def load_mnist(root: str | Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode one MNIST split from its IDX files into (uint8 N x 28 x 28 images, int64 labels)."""
    dataset = MNIST(str(root), train=train, download=False)
    return dataset.data, dataset.targets


class MNISTDataModule(L.LightningDataModule):
    """MNIST with a seeded train/validation split of the 60,000 training images and the official
    10,000 test images."""

    def __init__(
        self,
        root: str,
        download: bool,
        batch_size: int,
        val_size: int,
        split_seed: int,
        mean: float,
        std: float,
        num_workers: int,
        pin_memory: bool,
        augment: Mapping[str, Any] | None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.root = Path(root).expanduser()
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    def prepare_data(self) -> None:
        """Make sure the four IDX files exist, downloading them with torchvision if allowed."""
        missing = missing_raw_files(self.root)
        if not missing:
            return
        raw = self.root / "MNIST" / "raw"
        hint = (
            f"MNIST not found: {raw} lacks {', '.join(missing)}; put the four IDX files there "
            "or point data.root (or DIGITS_DATA_DIR) at the folder that holds MNIST/raw/"
        )
        if not self.hparams.download:
            raise DigitsError(hint + " (download is off: data.download=false)")
        try:
            MNIST(str(self.root), train=True, download=True)
            MNIST(str(self.root), train=False, download=True)
        except Exception as error:  # torchvision raises several kinds on a failed download
            raise DigitsError(f"{hint} (download failed: {error})".replace("\n", " ")) from error

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit", "validate") and self.train_set is None:
            images, labels = load_mnist(self.root, train=True)
            val_size = self.hparams.val_size
            if not 0 < val_size < len(labels):
                raise DigitsError(
                    f"data.val_size={val_size} is out of range: use 1..{len(labels) - 1} "
                    f"(validation is taken from the {len(labels)} training images)"
                )
            generator = torch.Generator().manual_seed(self.hparams.split_seed)
            order = torch.randperm(len(labels), generator=generator)
            val_idx, train_idx = order[:val_size], order[val_size:]
            self.train_set = TensorImages(images[train_idx], labels[train_idx])
            self.val_set = TensorImages(images[val_idx], labels[val_idx])
        if stage in (None, "test", "predict") and self.test_set is None:
            self.test_set = TensorImages(*load_mnist(self.root, train=False))

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.hparams.batch_size,
            shuffle=shuffle,
            collate_fn=keep_batch,
            num_workers=self.hparams.num_workers,
            pin_memory=self.hparams.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.hparams.num_workers > 0,
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
        """Turn uint8 images into normalised float (N, 1, 28, 28) on the model's device, randomly
        transformed when training with `augment` set."""
        images, labels = batch
        images = images.unsqueeze(1).float().div_(255.0)
        if self.hparams.augment and self.trainer is not None and self.trainer.training:
            images = random_affine(images, **self.hparams.augment)
        images = images.sub_(self.hparams.mean).div_(self.hparams.std)
        return images, labels
