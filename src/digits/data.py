"""MNIST as a LightningDataModule.

The default data path keeps the decoded images in one uint8 tensor (60,000x28x28 is 47 MB) and takes
whole batches from it by index; conversion to float and normalisation happen per batch on the device
the model runs on. Lightning's samplers (shuffle, DistributedSampler, limit_*_batches) still apply,
because batches are drawn by an ordinary DataLoader over index lists.
"""

from __future__ import annotations

import gzip
import math
import shutil
import struct
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, RandomSampler, Subset
from torchvision import transforms
from torchvision.datasets import MNIST

from digits.errors import DigitsError

IDX_IMAGES, IDX_LABELS = 0x00000803, 0x00000801  # unsigned bytes, 3 or 1 dimensions
RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
# memory: decoded once into uint8 tensors, batches normalised on the device (fast, the default);
# torchvision: the tutorials' per-sample PIL -> ToTensor -> Normalize, kept for comparison.
PIPELINES = ("memory", "torchvision")


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


class EpochShuffle(RandomSampler):
    """Shuffles with a generator seeded by (seed, epoch), so the order of any epoch can be replayed
    after a restart. Lightning calls `set_epoch` (and swaps in a DistributedSampler under DDP)."""

    def __init__(self, data_source: Dataset, seed: int) -> None:
        super().__init__(data_source)
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + 1_000_003 * self.epoch)
        yield from torch.randperm(len(self.data_source), generator=generator).tolist()


class ResumableLoader(DataLoader):
    """A DataLoader that knows how many batches of the current epoch it has given out. Lightning
    stores `state_dict()` in checkpoints; after `load_state_dict()` the next epoch-iteration skips
    the batches already trained on, so a run resumed mid-epoch sees exactly the data it had left."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._given = 0
        self._skip = 0

    def __iter__(self) -> Iterator[Any]:
        skip, self._skip = self._skip, 0
        sampler = self.batch_sampler
        if skip and sampler is not None:
            indices = list(sampler)[skip:]  # same epoch order, minus what was trained on
            iterator = iter(
                DataLoader(
                    self.dataset,
                    batch_sampler=indices,
                    collate_fn=self.collate_fn,
                    num_workers=self.num_workers,
                    pin_memory=self.pin_memory,
                    generator=self.generator,
                )
            )
        else:
            iterator = super().__iter__()
        self._given = skip
        for batch in iterator:
            self._given += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"batches_given": self._given}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._skip = state["batches_given"]


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


def _corrupt(path: Path, problem: str) -> DigitsError:
    return DigitsError(f"{path}: {problem}; delete it so that it is downloaded (or copied) again")


def gunzip_raw_files(raw: Path) -> None:
    """Decompress IDX files that are only there as .gz (atomically: never a half-written file)."""
    for name in RAW_FILES:
        packed, target = raw / f"{name}.gz", raw / name
        if target.is_file() or not packed.is_file():
            continue
        partial = target.with_suffix(".partial")
        try:
            with gzip.open(packed) as source, partial.open("wb") as sink:
                shutil.copyfileobj(source, sink)
        except (OSError, EOFError) as error:
            partial.unlink(missing_ok=True)
            raise _corrupt(packed, f"gzip does not decompress ({error})") from error
        partial.replace(target)


def check_raw_files(raw: Path) -> None:
    """Check every IDX file's magic number, shape and size, and that labels match images, so that a
    damaged file stops the run before any training on partial data."""
    counts: dict[str, int] = {}
    for name in RAW_FILES:
        path = raw / name
        is_images = "images" in name
        header_size = 16 if is_images else 8
        with path.open("rb") as handle:
            header = handle.read(header_size)
        if len(header) < header_size:
            raise _corrupt(path, f"only {len(header)} bytes, shorter than an IDX header")
        magic, count = struct.unpack(">II", header[:8])
        expected_magic = IDX_IMAGES if is_images else IDX_LABELS
        if magic != expected_magic:
            raise _corrupt(
                path, f"wrong magic number {magic:#010x} (expected {expected_magic:#010x})"
            )
        item_size = 1
        if is_images:
            rows, cols = struct.unpack(">II", header[8:16])
            if (rows, cols) != (28, 28):
                raise _corrupt(path, f"images are {rows}x{cols}, not 28x28")
            item_size = rows * cols
        expected_size = header_size + count * item_size
        size = path.stat().st_size
        if size != expected_size:
            raise _corrupt(
                path, f"{size} bytes but its header promises {count} items ({expected_size} bytes)"
            )
        counts[name] = count
    for prefix in ("train", "t10k"):
        images, labels = (
            counts[f"{prefix}-images-idx3-ubyte"],
            counts[f"{prefix}-labels-idx1-ubyte"],
        )
        if images != labels:
            raise _corrupt(
                raw / f"{prefix}-labels-idx1-ubyte", f"{labels} labels for {images} images"
            )


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
        pipeline: str,
    ) -> None:
        super().__init__()
        if pipeline not in PIPELINES:
            raise DigitsError(f"data.pipeline={pipeline}: use one of {', '.join(PIPELINES)}")
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
        gunzip_raw_files(self.root / "MNIST" / "raw")
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
        if self.train_set is None and self.test_set is None:
            check_raw_files(self.root / "MNIST" / "raw")
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
            if self.hparams.pipeline == "memory":
                self.train_set = TensorImages(images[train_idx], labels[train_idx])
                self.val_set = TensorImages(images[val_idx], labels[val_idx])
            else:
                full = self._torchvision_dataset(train=True)
                self.train_set = Subset(full, train_idx.tolist())
                self.val_set = Subset(full, val_idx.tolist())
        if stage in (None, "test", "predict") and self.test_set is None:
            if self.hparams.pipeline == "memory":
                self.test_set = TensorImages(*load_mnist(self.root, train=False))
            else:
                self.test_set = self._torchvision_dataset(train=False)

    def _torchvision_dataset(self, train: bool) -> MNIST:
        """The tutorials' pipeline: a PIL image per sample through ToTensor and Normalize."""
        mean, std = self.hparams.mean, self.hparams.std
        transform = transforms.Compose(
            [transforms.ToTensor(), transforms.Normalize((mean,), (std,))]
        )
        return MNIST(str(self.root), train=train, transform=transform)

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        return ResumableLoader(
            dataset,
            batch_size=self.hparams.batch_size,
            # The run's seed (seed_everything sets torch's initial seed) drives the shuffle order.
            sampler=EpochShuffle(dataset, torch.initial_seed()) if shuffle else None,
            # Its own generator: starting an epoch must not draw from the global RNG that dropout
            # uses, or a resumed run would see different dropout masks.
            generator=torch.Generator().manual_seed(torch.initial_seed()),
            collate_fn=keep_batch if self.hparams.pipeline == "memory" else None,
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
        if self.hparams.pipeline != "memory":
            return images, labels  # torchvision's transforms already did it, per sample
        images = images.unsqueeze(1).float().div_(255.0)
        if self.hparams.augment and self.trainer is not None and self.trainer.training:
            images = random_affine(images, **self.hparams.augment)
        images = images.sub_(self.hparams.mean).div_(self.hparams.std)
        return images, labels
