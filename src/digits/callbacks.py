"""Lightning callbacks that put pictures in TensorBoard: training samples and the validation
confusion matrix."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.tensorboard import SummaryWriter
from torchmetrics.classification import MulticlassConfusionMatrix

from digits.models import NUM_CLASSES
from digits.plots import confusion_matrix_figure, image_grid_figure


def tensorboard_writer(trainer: L.Trainer) -> SummaryWriter | None:
    """The run's TensorBoard writer on the main process, or None when there is none."""
    if not trainer.is_global_zero:
        return None
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            return logger.experiment
    return None


class TrainingFigures(L.Callback):
    """Logs a grid of training samples when training starts and, if `confusion_matrix`, the
    validation confusion matrix at the end of every validation."""

    def __init__(self, samples: int, confusion_matrix: bool) -> None:
        self.samples = samples
        self.confusion_matrix = confusion_matrix
        self.confusion = MulticlassConfusionMatrix(NUM_CLASSES)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.confusion = self.confusion.to(pl_module.device)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        writer = tensorboard_writer(trainer)
        if writer is None or not self.samples or trainer.datamodule is None:
            return
        images, labels = next(iter(trainer.datamodule.train_dataloader()))
        images, labels = images[: self.samples].squeeze(1), labels[: self.samples]
        figure = image_grid_figure(images, [str(int(label)) for label in labels])
        writer.add_figure("samples/train", figure, global_step=trainer.global_step)

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self.confusion_matrix and isinstance(outputs, torch.Tensor):
            self.confusion.update(outputs, batch[1])

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.confusion_matrix:
            return
        matrix = self.confusion.compute()  # gathers across processes under DDP
        self.confusion.reset()
        writer = tensorboard_writer(trainer)
        if writer is not None and not trainer.sanity_checking:
            title = f"validation, epoch {trainer.current_epoch}"
            writer.add_figure(
                "val/confusion_matrix", confusion_matrix_figure(matrix, title), trainer.global_step
            )
