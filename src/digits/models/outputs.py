"""What the classifier's test and validation steps return (its logits), collected with the labels:
digits.evaluate scores them, digits.train keeps its test predictions image by image and logs each
source's validation accuracy (data=mix)."""

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


class PerSourceAccuracy(Logits):
    """Each source's validation accuracy, `val/<source>/acc`, beside the pooled val/acc, for a data
    option of several sources (data=mix; the data module's `source_slices("val")`). The model cannot
    keep a torchmetrics metric per source: only the data module knows where each image came from,
    by its place in the validation set."""

    def __init__(self) -> None:
        super().__init__("val")
        self.sources: dict[str, slice] = {}

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        self.logits, self.labels = [], []
        datamodule = trainer.datamodule
        wanted = not trainer.sanity_checking and hasattr(datamodule, "source_slices")
        self.sources = datamodule.source_slices("val") if wanted else {}

    def on_validation_batch_end(self, *args: Any) -> None:
        if self.sources:
            super().on_validation_batch_end(*args)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        if not self.sources:
            return
        logits, labels = self.in_dataset_order(trainer, len(trainer.datamodule.val_set))
        right = (logits.argmax(dim=1) == labels).float()
        for name, part in self.sources.items():
            if len(right[part]):  # limit_val_batches may stop before a source's images
                pl_module.log(f"val/{name}/acc", right[part].mean(), sync_dist=False)
