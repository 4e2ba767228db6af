"""The LightningModule: a network from conf/model/ behind the model's input contract, with
cross-entropy, accuracy, optimizer and schedule.

Input contract: images as 0-1 floats (N, 1, 28, 28), white ink on black. The module normalises them
itself with the mean and std it was built with, which its checkpoint stores, so a checkpoint alone
classifies an image (see digits.models.checkpoint.load_classifier)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import lightning as L
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torchmetrics import CatMetric
from torchmetrics.classification import MulticlassAccuracy
from torchvision.transforms import v2

from digits.constraints import NOT_NEGATIVE, POSITIVE, PROBABILITY, Range
from digits.models.base import DigitsModule
from digits.models.calibration import calibrated, fit_temperature
from digits.models.finetuning import FreezeParts
from digits.models.networks import NUM_CLASSES, parts_of
from digits.runs.per_image import PerImageResults

Batch = tuple[torch.Tensor, torch.Tensor]


def shifted_views(images: torch.Tensor, max_shift: int) -> list[torch.Tensor]:
    """The (N, C, H, W) batch moved by every whole number of pixels from -max_shift to max_shift
    in each direction (zeros shifted in), unmoved first: (2 * max_shift + 1)^2 views."""
    if max_shift == 0:
        return [images]
    height, width = images.shape[-2:]
    padded = F.pad(images, [max_shift] * 4)
    offsets = sorted(range(-max_shift, max_shift + 1), key=abs)
    return [
        padded[
            ..., max_shift + dy : max_shift + dy + height, max_shift + dx : max_shift + dx + width
        ]
        for dy in offsets
        for dx in offsets
    ]


class DigitClassifier(DigitsModule):
    """Classifies 28x28 digit images. Takes the network, optimizer and scheduler as configs (dicts with
    `_target_`) and instantiates them itself, so a checkpoint alone rebuilds the model. Its own
    settings come from conf/module/: label smoothing, compile, channels_last, the input
    normalisation (mean, std), calibration and weight averaging (ema_decay).

    With `ema_decay`, an exponential moving average of the network's weights (and batch-norm
    statistics) follows every optimizer step; the module scores with it whenever it is not
    training (validation, test, predict, export), and checkpoints hold both."""

    def __init__(
        self,
        net: Mapping,
        optimizer: Mapping,
        scheduler: Mapping | None,
        label_smoothing: Annotated[float, PROBABILITY],
        compile: bool,
        channels_last: bool,
        mean: float,
        std: Annotated[float, POSITIVE],
        calibrate: bool,
        ema_decay: Annotated[float | None, Range(gt=0, lt=1)],
        freeze: list[str] | None,
        unfreeze_at_epoch: Annotated[int | None, NOT_NEGATIVE],
        body_lr_scale: Annotated[float, POSITIVE],
    ) -> None:
        super().__init__()
        self.keep_settings(
            net,
            optimizer,
            scheduler,
            label_smoothing=label_smoothing,
            compile=compile,
            channels_last=channels_last,
            mean=mean,
            std=std,
            calibrate=calibrate,
            ema_decay=ema_decay,
            freeze=list(freeze) if freeze else None,
            unfreeze_at_epoch=unfreeze_at_epoch,
            body_lr_scale=body_lr_scale,
        )
        self.normalize = v2.Normalize([mean], [std])
        self.net = instantiate(self.hparams.net, _convert_="all")
        self.channels_last = channels_last
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        # torch's AveragedModel of the network alone: Lightning's EMAWeightAveraging callback
        # averages and swaps every buffer of the LightningModule (the calibration temperature and
        # epoch sums too) and saves a stale copy of its metric states.
        self.ema = (
            AveragedModel(self.net, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True)
            if ema_decay
            else None
        )
        if self.ema is not None:
            self.ema.requires_grad_(False)
        if compile:
            self.net.compile()  # in place: state_dict keys stay the same
            if self.ema is not None:
                self.ema.module.compile()
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        # No input validation or NaN checks per step: each would cost a host sync (and time on the
        # CPU); StopOnDivergence watches the loss instead.
        accuracy = {"num_classes": NUM_CLASSES, "average": "micro", "validate_args": False}
        self.val_acc = MulticlassAccuracy(**accuracy)
        self.test_acc = MulticlassAccuracy(**accuracy)
        # Divides the logits for probabilities (not for the loss): fitted on the validation split
        # after every validation when `calibrate`, so each checkpoint holds its weights' own.
        self.register_buffer("temperature", torch.ones(()))
        # Validation logits and labels, gathered from every process (DDP) when computed.
        self.val_logits, self.val_labels = CatMetric(), CatMetric()
        # Test-time augmentation for digits.evaluate tta=N (never set while training): validation
        # and test logits are averaged over the images shifted by every whole number of pixels up
        # to N in each direction.
        self.test_time_shift = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (N, 10) for 0-1 images (N, 1, 28, 28), white ink on black. Images of another
        float type are cast to the model's (e.g. trainer.precision=64-true or bf16-true)."""
        images = self.normalize(images.to(self.dtype))
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return self.scoring_net(images)

    @property
    def scoring_net(self) -> nn.Module:
        """The network that scores: the weight average (ema_decay) except while training."""
        return self.ema.module if self.ema is not None and not self.training else self.net

    def on_train_batch_end(self, outputs: Any, batch: Batch, batch_idx: int) -> None:
        # After each optimizer step (one per accumulate_grad_batches batches).
        if self.ema is not None and (batch_idx + 1) % self.trainer.accumulate_grad_batches == 0:
            self.ema.update_parameters(self.net)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Calibrated class probabilities (N, 10) from this model's logits."""
        return calibrated(logits, self.temperature)

    def _step(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = batch
        if self.test_time_shift:
            views = shifted_views(images, self.test_time_shift)
            logits = torch.stack([self(view) for view in views]).mean(dim=0)
        else:
            logits = self(images)
        return self.criterion(logits, labels), logits

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        loss, logits = self._step(batch)
        self.count_training(loss, logits.argmax(dim=1) == batch[1])
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        """Logs val/loss and val/acc; returns the logits (for callbacks)."""
        loss, logits = self._step(batch)
        self.val_acc(logits, batch[1])
        self.log("val/loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log("val/acc", self.val_acc, on_step=False, on_epoch=True, prog_bar=True)
        if self.hparams.calibrate and not self.trainer.sanity_checking:
            self.val_logits.update(logits.detach().float())
            self.val_labels.update(batch[1])
        return logits

    def on_validation_epoch_end(self) -> None:
        self.log_best(self.val_acc.compute())
        if self.hparams.calibrate and self.val_labels.update_called:
            # Every process gets all of the split's logits, so each fits the same temperature.
            labels = self.val_labels.compute().long().reshape(-1)  # one image: CatMetric gives 0-d
            logits = self.val_logits.compute().view(len(labels), NUM_CLASSES)
            self.temperature.fill_(fit_temperature(logits, labels))
            self.val_logits.reset()
            self.val_labels.reset()
            self.log("val/temperature", self.temperature, sync_dist=False)

    def test_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        """Logs test/loss and test/acc; returns the logits (for digits.evaluate)."""
        loss, logits = self._step(batch)
        self.test_acc(logits, batch[1])
        self.log("test/loss", loss, on_step=False, on_epoch=True, sync_dist=True)
        self.log("test/acc", self.test_acc, on_step=False, on_epoch=True)
        return logits

    def results_of(self, logits: torch.Tensor, labels: torch.Tensor) -> PerImageResults:
        """The test step's logits and the labels as each image's label, class and confidence."""
        confidence, predicted = self.probabilities(logits.to(self.device)).cpu().max(dim=1)
        return PerImageResults(labels.numpy(), predicted.numpy(), confidence.numpy())

    def predict_step(self, batch: torch.Tensor | Batch, batch_idx: int) -> torch.Tensor:
        """Calibrated class probabilities (N, 10) for a batch of images, or of (images, labels)."""
        images = batch[0] if isinstance(batch, list | tuple) else batch
        return self.probabilities(self(images))

    def configure_callbacks(self) -> list[L.Callback]:
        """Freezing (module.freeze) is the module's own setting, run by Lightning's callback."""
        if not self.hparams.freeze:
            return []
        return [FreezeParts(self.hparams.freeze, self.hparams.unfreeze_at_epoch)]

    def parameter_groups(self) -> list[dict[str, Any]]:
        """The network's parameters for the optimizer: one group, or with body_lr_scale the body
        (all but the head) at that multiple of the learning rate, the head at the rate itself."""
        scale = self.hparams.body_lr_scale
        if scale == 1:
            return [{"params": list(self.net.parameters())}]
        head = {id(p) for p in parts_of(self.net)["head"].parameters()}
        body = [p for p in self.net.parameters() if id(p) not in head]
        lr = self.hparams.optimizer["lr"]
        return [
            {"params": body, "lr": lr * scale},
            {"params": [p for p in self.net.parameters() if id(p) in head], "lr": lr},
        ]
