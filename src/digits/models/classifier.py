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
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torchmetrics import CatMetric, MaxMetric
from torchmetrics.classification import MulticlassAccuracy
from torchvision.transforms import v2

from digits.constraints import NOT_NEGATIVE, POSITIVE, PROBABILITY, Range
from digits.models.calibration import calibrated, fit_temperature
from digits.models.finetuning import FreezeParts
from digits.models.networks import NUM_CLASSES, parts_of

# What the module logs while fitting: the metrics callbacks may monitor, sweepers optimise and
# metrics.json keeps from the fit. Models are never selected on test/ metrics.
FIT_METRICS = ("train/loss_epoch", "train/acc", "val/loss", "val/acc", "val/acc_best")
# Scheduler keys that the module fills in from the trainer when the config leaves them null.
STEP_COUNT_KEYS = ("total_steps", "T_max")
Batch = tuple[torch.Tensor, torch.Tensor]


def plain(config: Mapping | None) -> dict[str, Any] | None:
    """A config as a plain dict, so checkpoints hold only primitives (safe for weights_only loads)."""
    if config is None or (isinstance(config, Mapping) and not config):
        return None
    if isinstance(config, DictConfig):
        return OmegaConf.to_container(config, resolve=True)
    return dict(config)


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


class DigitClassifier(L.LightningModule):
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
        self.save_hyperparameters(
            {
                "net": plain(net),
                "optimizer": plain(optimizer),
                "scheduler": plain(scheduler),
                "label_smoothing": label_smoothing,
                "compile": compile,
                "channels_last": channels_last,
                "mean": mean,
                "std": std,
                "calibrate": calibrate,
                "ema_decay": ema_decay,
                "freeze": list(freeze) if freeze else None,
                "unfreeze_at_epoch": unfreeze_at_epoch,
                "body_lr_scale": body_lr_scale,
            },
            # Not to the loggers: digits.train logs the run's defining settings itself at the end.
            logger=False,
        )
        self.normalize = v2.Normalize([mean], [std])
        # The run whose weights this model started from (init_from=: digits.runs.lineage), kept
        # in every checkpoint; None for a model trained from scratch.
        self.parent: dict[str, Any] | None = None
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
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)
        # Training-epoch sums as plain buffers: three in-place adds per step, where torchmetrics'
        # update costs ~0.2 ms each (measured: as much as a whole mlp step). Saved in checkpoints,
        # so a run resumed mid-epoch reports the same epoch means.
        for name in ("train_loss_sum", "train_correct", "train_seen"):
            self.register_buffer(name, torch.zeros((), dtype=torch.float64))
        self.restored_metrics: dict[str, float] = {}  # from the checkpoint a run resumed from
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

    def on_train_start(self) -> None:
        # The sanity check's validation must not count as a best score.
        if self.trainer.global_step == 0:
            self.val_acc_best.reset()

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        loss, logits = self._step(batch)
        labels = batch[1]
        self.train_loss_sum += loss.detach() * len(labels)
        self.train_correct += (logits.argmax(dim=1) == labels).sum()
        self.train_seen += len(labels)
        # Only on the steps the logger writes (a self.log call costs ~0.5 ms, as much as an mlp
        # step), and not in the progress bar, which would copy the loss to the host every step.
        if (self.global_step + 1) % self.trainer.log_every_n_steps == 0:
            self.log("train/loss_step", loss, on_step=True, on_epoch=False)
        return loss

    def on_train_epoch_end(self) -> None:
        seen = self.train_seen.clamp(min=1)
        self.log(
            "train/loss_epoch", (self.train_loss_sum / seen).float(), prog_bar=True, sync_dist=True
        )
        self.log("train/acc", (self.train_correct / seen).float(), prog_bar=True, sync_dist=True)
        for name in ("train_loss_sum", "train_correct", "train_seen"):
            getattr(self, name).zero_()

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
        self.val_acc_best(self.val_acc.compute())
        self.log("val/acc_best", self.val_acc_best.compute(), sync_dist=True, prog_bar=True)
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

    def predict_step(self, batch: torch.Tensor | Batch, batch_idx: int) -> torch.Tensor:
        """Calibrated class probabilities (N, 10) for a batch of images, or of (images, labels)."""
        images = batch[0] if isinstance(batch, list | tuple) else batch
        return self.probabilities(self(images))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Dropout draws from torch's RNG: keep its state so a resumed run continues identically.
        checkpoint["rng_state"] = torch.get_rng_state()
        # What was logged so far, so a run killed after its training (in its test pass) still
        # reports its training metrics once resumed: Lightning does not keep them.
        checkpoint["logged_metrics"] = {
            name: float(value)
            for name, value in self.trainer.callback_metrics.items()
            if value.numel() == 1
        }
        if torch.cuda.is_available():
            checkpoint["cuda_rng_state"] = torch.cuda.get_rng_state_all()
        # Which data option the data settings are for: a class name of digits.data, or your own
        # module's module.Class (loaded again only when you trust it: digits.trusted_code).
        if self.parent is not None:
            checkpoint["parent"] = self.parent
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None:
            option = type(datamodule)
            own = option.__module__.startswith("digits.data.")
            checkpoint["data_module"] = (
                option.__name__ if own else f"{option.__module__}.{option.__qualname__}"
            )

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.restored_metrics = checkpoint.get("logged_metrics", {})
        self.parent = checkpoint.get("parent")
        if "rng_state" in checkpoint:
            torch.set_rng_state(checkpoint["rng_state"])
        if "cuda_rng_state" in checkpoint and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(checkpoint["cuda_rng_state"])

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

    def configure_optimizers(self) -> Any:
        groups = self.parameter_groups()
        optimizer = instantiate(self.hparams.optimizer)(params=groups)
        if self.hparams.scheduler is None:
            return optimizer
        config = dict(self.hparams.scheduler)
        interval = config.pop("interval", "epoch")
        if "max_lr" in config and len(groups) > 1:  # one-cycle: each group peaks at its own scale
            config["max_lr"] = [
                config["max_lr"] * group["lr"] / groups[-1]["lr"] for group in groups
            ]
        for key in STEP_COUNT_KEYS:
            if key in config and config[key] is None:
                config[key] = int(self.trainer.estimated_stepping_batches)
        scheduler = instantiate(config, _convert_="all")(
            optimizer
        )  # max_lr: a list, not ListConfig
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": interval},
        }
