"""The ways `digits.adapt` fits a trained classifier to new images without their labels (the
target's labels, where a set has them, only report how well it went). Each method is the
classifier itself with another training step, so what it saves is an ordinary digits checkpoint
(the same settings, the same weights' names): evaluate, export and serve take an adapted model as
any other.

- AdaBN (Li et al., 2016): the batch-norm layers' statistics estimated again on the target images,
  in one pass; no weight changes. For networks with batch norm (model=lenet model.batch_norm=true).
- Self-training (FixMatch's recipe, Sohn et al., 2020): the model labels each target image from a
  weakly augmented view; where it is confident enough (`threshold`), it learns that label on a
  strongly augmented view of the same image.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import torch
import torch.nn.functional as F
from torch import nn

from digits.constraints import Range
from digits.data.augment import augment
from digits.data.datamodule import Augment
from digits.models.classifier import Batch, DigitClassifier
from digits.models.finetuning import BATCH_NORMS

Threshold = Annotated[float, Range(gt=0, lt=1, note="a calibrated confidence")]


def batch_norm_layers(module: nn.Module) -> list[nn.Module]:
    return [layer for layer in module.modules() if isinstance(layer, BATCH_NORMS)]


class AdaBN(DigitClassifier):
    """Re-estimates every batch-norm layer's mean and variance on the target's training images
    (one epoch: their plain average over its batches), the weights as trained. The other layers
    stay in inference mode (dropout off)."""

    method = "adabn"

    def __init__(self, **trained: Any) -> None:
        super().__init__(**trained)
        self.automatic_optimization = False  # nothing to optimise: statistics only

    def on_train_start(self) -> None:
        for layer in batch_norm_layers(self):  # the weight average's copy too (ema_decay)
            layer.reset_running_stats()
            layer.momentum = None  # a cumulative average over every batch, not a moving one

    def training_step(self, batch: Batch, batch_idx: int) -> None:
        self.eval()
        for layer in batch_norm_layers(self):
            layer.train()
        with torch.no_grad():
            images = self.normalize(batch[0].to(self.dtype))
            for network in (self.net, self.ema.module if self.ema is not None else None):
                if network is not None:
                    network(images)
        self.train_seen += len(batch[0])

    def on_train_batch_end(self, outputs: Any, batch: Batch, batch_idx: int) -> None:
        pass  # no optimizer step: the weight average (ema_decay) must not move either

    def on_train_epoch_end(self) -> None:
        self.log("adapt/images", self.train_seen.float())
        self.train_seen.zero_()

    def configure_optimizers(self) -> None:
        return None


class SelfTraining(DigitClassifier):
    """Learns its own confident answers: for each target image, the model (in inference mode: its
    weight average, with ema_decay) labels a `weak` view; where its calibrated confidence reaches
    `threshold`, the cross-entropy of a `strong` view against that label trains the network (an
    image below it adds nothing; the loss is the batch's mean, as FixMatch's). `weak` and `strong`
    are data.augment's settings."""

    method = "self_training"

    def __init__(
        self, threshold: Threshold, weak: Augment, strong: Augment, **trained: Any
    ) -> None:
        super().__init__(**trained)
        self.threshold = threshold
        self.weak: Mapping[str, Any] = dict(weak or {})
        self.strong: Mapping[str, Any] = dict(strong or {})
        # Epoch sums: images taken (confident); of those with a label (data=unlabelled has none),
        # how many, and how many pseudo-labels it agrees with (a report: never in the loss).
        for name in ("taken", "taken_labelled", "taken_right"):
            self.register_buffer(name, torch.zeros((), dtype=torch.float64), persistent=False)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        images, labels = batch
        self.eval()
        with torch.no_grad():
            confidence, pseudo = self.probabilities(self(augment(images, **self.weak))).max(dim=1)
        self.train()
        taken = confidence >= self.threshold
        logits = self(augment(images, **self.strong))
        loss = (F.cross_entropy(logits, pseudo, reduction="none") * taken).mean()
        self.train_loss_sum += loss.detach() * len(images)
        self.train_seen += len(images)
        self.taken += taken.sum()
        labelled = taken & (labels >= 0)
        self.taken_labelled += labelled.sum()
        self.taken_right += (labelled & (pseudo == labels)).sum()
        return loss

    def on_train_epoch_end(self) -> None:
        seen = self.train_seen.clamp(min=1)
        self.log("train/loss_epoch", (self.train_loss_sum / seen).float(), prog_bar=True)
        self.log("adapt/taken", (self.taken / seen).float(), prog_bar=True, sync_dist=True)
        if self.taken_labelled > 0:
            right = self.taken_right / self.taken_labelled
            self.log("adapt/pseudo_label_acc", right.float(), sync_dist=True)
        for name in ("train_loss_sum", "train_seen", "taken", "taken_labelled", "taken_right"):
            getattr(self, name).zero_()
