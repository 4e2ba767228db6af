"""What the classifier's test and validation steps return (its logits), collected with the labels:
digits.evaluate scores them, digits.train keeps its test predictions image by image."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch


class Logits(L.Callback):
    """Collects what test_step (split="test") or validation_step (split="val") returns, the logits,
    with the labels."""

    def __init__(self, split: str) -> None:
        self.split = split
        self.logits: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []

    def _collect(self, outputs: torch.Tensor, batch: Any) -> None:
        self.logits.append(outputs.detach().float().cpu())
        self.labels.append(batch[1].cpu())

    def on_test_batch_end(
        self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, *_: Any
    ) -> None:
        if self.split == "test":
            self._collect(outputs, batch)

    def on_validation_batch_end(
        self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, *_: Any
    ) -> None:
        if self.split == "val":
            self._collect(outputs, batch)

    def in_dataset_order(self, trainer: L.Trainer, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Every process's logits and labels, in the dataset's order; all processes must call it.
        Under DDP, Lightning's DistributedSampler deals process r the images r, r+W, r+2W, ...
        (padded to a multiple of W with the first ones), so gathering and interleaving the
        processes' shares restores the order. Fewer than `size` when the batches were limited."""
        logits, labels = torch.cat(self.logits), torch.cat(self.labels)
        if trainer.world_size == 1:
            return logits, labels
        device = trainer.strategy.root_device
        shares = [trainer.strategy.all_gather(t.to(device)).cpu() for t in (logits, labels)]
        logits, labels = (share.transpose(0, 1).flatten(0, 1)[:size] for share in shares)
        return logits, labels
