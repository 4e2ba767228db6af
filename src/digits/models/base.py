"""What digits' LightningModules share (the digit classifier, digits.models.classifier; the number
reader, digits.models.number_reader): the optimizer and schedule built from their configs, the
training epoch's loss and accuracy from running sums, the best validation accuracy, and what every
checkpoint carries besides the weights: where the weights started (`parent`), the metrics logged
so far, the random state and the data option's name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torchmetrics import MaxMetric

from digits.runs.per_image import PerImageResults

# What a module logs while fitting: the metrics callbacks may monitor, sweepers optimise and
# metrics.json keeps from the fit. Models are never selected on test/ metrics.
FIT_METRICS = ("train/loss_epoch", "train/acc", "val/loss", "val/acc", "val/acc_best")
# Scheduler keys that the module fills in from the trainer when the config leaves them null.
STEP_COUNT_KEYS = ("total_steps", "T_max")
TRAIN_SUMS = ("train_loss_sum", "train_correct", "train_seen")


def plain(config: Mapping | None) -> dict[str, Any] | None:
    """A config as a plain dict, so checkpoints hold only primitives (safe for weights_only loads)."""
    if config is None or (isinstance(config, Mapping) and not config):
        return None
    if isinstance(config, DictConfig):
        return OmegaConf.to_container(config, resolve=True)
    return dict(config)


class DigitsModule(L.LightningModule):
    """The base of digits' LightningModules (see the module's docstring). A subclass builds
    `self.net`, logs val/acc and calls `count_training` from its training step."""

    def __init__(self) -> None:
        super().__init__()
        # The run whose weights this model started from (init_from=: digits.runs.lineage), kept
        # in every checkpoint; None for a model trained from scratch.
        self.parent: dict[str, Any] | None = None
        self.restored_metrics: dict[str, float] = {}  # from the checkpoint a run resumed from
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)
        # Training-epoch sums as plain buffers: three in-place adds per step, where torchmetrics'
        # update costs ~0.2 ms each (measured: as much as a whole mlp step). Saved in checkpoints,
        # so a run resumed mid-epoch reports the same epoch means.
        for name in TRAIN_SUMS:
            self.register_buffer(name, torch.zeros((), dtype=torch.float64))

    def keep_settings(
        self,
        net: Mapping | None,
        optimizer: Mapping | None,
        scheduler: Mapping | None,
        **own: Any,
    ) -> None:
        """Save the settings the module was built with (its checkpoint rebuilds it from them):
        the network's, optimizer's and schedule's configs as plain dicts, so checkpoints hold only
        primitives (weights_only loads), and the module's own."""
        settings = {"net": plain(net), "optimizer": plain(optimizer), "scheduler": plain(scheduler)}
        # Not to the loggers: digits.train logs the run's defining settings itself at the end.
        self.save_hyperparameters(settings | own, logger=False)

    def count_training(self, loss: torch.Tensor, right: torch.Tensor) -> None:
        """Add a training batch's mean loss and which of its items were right to the epoch's sums."""
        self.train_loss_sum += loss.detach() * len(right)
        self.train_correct += right.sum()
        self.train_seen += len(right)
        # Only on the steps the logger writes (a self.log call costs ~0.5 ms, as much as an mlp
        # step), and not in the progress bar, which would copy the loss to the host every step.
        if (self.global_step + 1) % self.trainer.log_every_n_steps == 0:
            self.log("train/loss_step", loss, on_step=True, on_epoch=False)

    def on_train_epoch_end(self) -> None:
        seen = self.train_seen.clamp(min=1)
        self.log(
            "train/loss_epoch", (self.train_loss_sum / seen).float(), prog_bar=True, sync_dist=True
        )
        self.log("train/acc", (self.train_correct / seen).float(), prog_bar=True, sync_dist=True)
        for name in TRAIN_SUMS:
            getattr(self, name).zero_()

    def on_train_start(self) -> None:
        # The sanity check's validation must not count as a best score.
        if self.trainer.global_step == 0:
            self.val_acc_best.reset()

    def log_best(self, accuracy: torch.Tensor) -> None:
        """After each validation: the best val/acc so far, as val/acc_best."""
        self.val_acc_best(accuracy)
        self.log("val/acc_best", self.val_acc_best.compute(), sync_dist=True, prog_bar=True)

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

    def results_of(self, outputs: torch.Tensor, labels: torch.Tensor) -> PerImageResults:
        """Each test item's label, prediction and confidence, from what the test steps returned
        (digits.train keeps them as the run's test_predictions.csv)."""
        raise NotImplementedError

    def parameter_groups(self) -> list[dict[str, Any]]:
        """The network's parameters for the optimizer, in one group."""
        return [{"params": list(self.net.parameters())}]

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
