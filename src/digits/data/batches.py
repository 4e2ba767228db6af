"""Batches from images held in memory, in an order that can be replayed after a restart."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler


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
    the batches already trained on, so a run resumed mid-epoch sees exactly the data it had left.
    (torchdata's StatefulDataLoader does this too, but is not among our dependencies.)"""

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
        # An epoch given out whole is over: the next starts from its first batch. (Lightning can
        # save between an epoch's last batch and its end, e.g. when stopped during validation;
        # skipping a whole epoch on resume would lose its training.)
        return {"batches_given": 0 if self._given >= len(self) else self._given}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._skip = state["batches_given"]
