"""Fine-tuning with parts of the network frozen (module.freeze, by Lightning's BaseFinetuning):
the named parts take no gradient steps and their batch-norm layers stay in inference mode, their
statistics the trained model's own, until `module.unfreeze_at_epoch` (if given) makes them
trainable again (with the optimizer they were always in: a frozen weight has no gradient, so
the optimizer leaves it alone)."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import BaseFinetuning
from torch import nn

from digits.models.networks import parts_of

# torch's batch-norm layers (their common base class is private).
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


class FreezeParts(BaseFinetuning):
    """Freezes the network's parts `names` (see digits.models.networks.parts_of) from the start
    of training until epoch `unfreeze_at_epoch` (never, if None)."""

    def __init__(self, names: list[str], unfreeze_at_epoch: int | None) -> None:
        super().__init__()
        self.names = list(names)
        self.unfreeze_at_epoch = unfreeze_at_epoch
        self.frozen = False

    def frozen_parts(self, pl_module: L.LightningModule) -> list[nn.Module]:
        parts = parts_of(pl_module.net)
        return [parts[name] for name in self.names]

    def freeze_before_training(self, pl_module: L.LightningModule) -> None:
        self.freeze(self.frozen_parts(pl_module), train_bn=False)
        self.frozen = True

    def finetune_function(self, pl_module: L.LightningModule, epoch: int, optimizer: Any) -> None:
        if self.frozen and self.unfreeze_at_epoch is not None and epoch >= self.unfreeze_at_epoch:
            for part in self.frozen_parts(pl_module):
                self.make_trainable(part)
                part.train()  # Lightning set training mode once, before they were frozen
            self.frozen = False

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_start(trainer, pl_module)  # may unfreeze (finetune_function)
        if self.frozen:  # Lightning put every layer in training mode: frozen statistics stay
            for part in self.frozen_parts(pl_module):
                for layer in part.modules():
                    if isinstance(layer, BATCH_NORMS):
                        layer.eval()
