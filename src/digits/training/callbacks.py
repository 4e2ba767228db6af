"""Lightning callbacks of our own: pictures in TensorBoard (training samples, validation confusion
matrix), a progress bar that redraws only when it moves, keeping last.ckpt current, saving on
Ctrl-C or SIGTERM, stopping a diverged run."""

from __future__ import annotations

import logging
import math
import signal
import threading
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import torch
from lightning.pytorch.callbacks import Checkpoint, RichModelSummary, RichProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.model_summary import (
    get_formatted_model_size,
    get_human_readable_count,
)
from rich import get_console
from rich.table import Table
from torch.utils.tensorboard import SummaryWriter
from torchmetrics.classification import MulticlassConfusionMatrix

from digits.errors import DigitsError
from digits.models.networks import NUM_CLASSES
from digits.presentation.figures import (
    confident_mistakes,
    confusion_matrix_figure,
    image_grid_figure,
)
from digits.runs.run_dir import RunDir

log = logging.getLogger(__name__)


def tensorboard_writer(trainer: L.Trainer) -> SummaryWriter | None:
    """The run's TensorBoard writer on the main process, or None when there is none."""
    if not trainer.is_global_zero:
        return None
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            return logger.experiment
    return None


class TrainingFigures(L.Callback):
    """Logs a grid of training samples when training starts and, after every validation, the
    validation confusion matrix (if `confusion_matrix`) and the `mistakes` validation images the
    model got wrong most confidently, with true and predicted labels (0: none)."""

    # Legible in TensorBoard's IMAGES tab, which shrinks each image to a card about 320 px wide:
    # few columns, large captions.
    GRID: ClassVar[dict[str, Any]] = {"columns": 4, "cell": 1.5, "fontsize": 18}

    def __init__(self, samples: int, confusion_matrix: bool, mistakes: int) -> None:
        self.samples = samples
        self.confusion_matrix = confusion_matrix
        self.mistakes = mistakes
        self.confusion = MulticlassConfusionMatrix(NUM_CLASSES)
        self.wrong: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.confusion = self.confusion.to(pl_module.device)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        writer = tensorboard_writer(trainer)
        if writer is None or not self.samples or trainer.datamodule is None:
            return
        images, labels = next(iter(trainer.datamodule.train_dataloader()))[:2]
        images, labels = images[: self.samples].squeeze(1), labels[: self.samples]
        # A digit's label, or a strip's digits (-1 after the last: data=numbers).
        titles = ["".join(str(d) for d in label.flatten().tolist() if d >= 0) for label in labels]
        figure = image_grid_figure(images, titles, title="training samples", **self.GRID)
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
        classified = isinstance(outputs, torch.Tensor) and outputs.shape[1:] == (NUM_CLASSES,)
        if not classified or trainer.sanity_checking:  # a number reader's step gives its loss
            return
        if self.confusion_matrix:
            self.confusion.update(outputs, batch[1])
        if self.mistakes and trainer.is_global_zero:  # rank 0's share of the images under DDP
            self._keep_mistakes(batch[0], batch[1], outputs.softmax(dim=1))

    def _keep_mistakes(
        self, images: torch.Tensor, labels: torch.Tensor, probabilities: torch.Tensor
    ) -> None:
        """Keep this batch's most confident mistakes beside the best kept so far (a few images
        on the host, not the whole validation set)."""
        order, _ = confident_mistakes(probabilities, labels, self.mistakes)
        self.wrong += [
            (images[i].detach().cpu(), labels[i].cpu(), probabilities[i].detach().float().cpu())
            for i in order.tolist()
        ]
        self.wrong = sorted(self.wrong, key=lambda kept: -float(kept[2].max()))[: self.mistakes]

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        writer = tensorboard_writer(trainer) if not trainer.sanity_checking else None
        # A number reader's validation classifies no digit: no matrix to draw.
        if self.confusion_matrix and not trainer.sanity_checking and self.confusion.update_called:
            matrix = self.confusion.compute()  # gathers across processes under DDP
            self.confusion.reset()
            if writer is not None:
                title = f"validation, epoch {trainer.current_epoch}"
                figure = confusion_matrix_figure(matrix, title)
                writer.add_figure("val/confusion_matrix", figure, trainer.global_step)
        if self.wrong and writer is not None:
            images, labels, probabilities = (
                torch.stack(part) for part in zip(*self.wrong, strict=True)
            )
            order, captions = confident_mistakes(probabilities, labels, self.mistakes)
            title = (
                f"validation mistakes, epoch {trainer.current_epoch}"  # captions: true→predicted
            )
            figure = image_grid_figure(images[order].squeeze(1), captions, title=title, **self.GRID)
            writer.add_figure("val/mistakes", figure, trainer.global_step)
        self.wrong = []


class ProgressBar(RichProgressBar):
    """Lightning's rich progress bar, brought up to date every `refresh_rate` training batches,
    without the logger's version number.

    Why not Lightning's as it is: its on_train_batch_end gathers the progress-bar metrics and
    redraws on every batch, whatever refresh_rate says (0.07 ms a step in a terminal, 3% of an
    mlp step at batch 64); the bar itself only moves every refresh_rate batches anyway."""

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        done = batch_idx + 1
        if done % max(self.refresh_rate, 1) == 0 or done >= self.total_train_batches:
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        """The logged metrics without the logger's version (`v_num`: the run's name, shown above
        the bar already), as Lightning's docs suggest."""
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics


class ModelSummary(RichModelSummary):
    """Lightning's rich model summary, without the FLOPs column and total where it counted none.

    Why not Lightning's as it is: it prints `Total FLOPs: 0` and a column of zeros unless the module
    has an `example_input_array`, which our data modules' batch hooks (uint8 (images, labels) in
    memory) cannot take."""

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs: Any,
    ) -> None:
        if total_flops:
            RichModelSummary.summarize(
                summary_data, total_parameters, trainable_parameters, model_size,
                total_training_modes, total_flops, **summarize_kwargs,
            )  # fmt: skip
            return
        columns = [(name, values) for name, values in summary_data if name != "FLOPs"]
        table = Table(header_style=summarize_kwargs.get("header_style", "bold magenta"))
        for name, _ in columns:
            numeric = name in ("Params", "Params per Device", "In sizes", "Out sizes")
            table.add_column(name, justify="right" if numeric else "left", no_wrap=name == "Name")
        for row in zip(*(values for _, values in columns), strict=True):
            table.add_row(*row)
        totals = Table.grid(expand=True)
        for label, value in (
            ("Trainable params", get_human_readable_count(int(trainable_parameters))),
            (
                "Non-trainable params",
                get_human_readable_count(int(total_parameters - trainable_parameters)),
            ),
            ("Total params", get_human_readable_count(int(total_parameters))),
            ("Total estimated model params size (MB)", get_formatted_model_size(model_size)),
            ("Modules in train mode", str(total_training_modes["train"])),
            ("Modules in eval mode", str(total_training_modes["eval"])),
        ):
            totals.add_row(f"[bold]{label}[/]: {value}")
        get_console().print(table)
        get_console().print(totals)


class InterruptCheckpoint(L.Callback):
    """Ctrl-C (SIGINT) or SIGTERM: finish the current step, save the run's checkpoints/last.ckpt, say
    how to resume, exit non-zero. Lightning stops after the step on SIGTERM; SIGINT is made to do
    the same (a second Ctrl-C stops at once). Other exceptions (a diverged loss, a bug) leave the
    last good checkpoint alone.

    Why not Lightning's: OnExceptionCheckpoint (and ModelCheckpoint(save_on_exception=True)) saves on
    every exception, so a diverged run would overwrite the last good checkpoint, Ctrl-C lands
    mid-step, and OnExceptionCheckpoint deletes its file again at teardown."""

    def __init__(self, run_dir: str) -> None:
        self.run = RunDir(Path(run_dir))
        self._interrupted = False
        self._previous_handler: Any = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous_handler = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self._interrupted:
            raise KeyboardInterrupt
        self._interrupted = True

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self._interrupted:
            raise KeyboardInterrupt

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._previous_handler is not None:
            signal.signal(signal.SIGINT, self._previous_handler)
            self._previous_handler = None

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, KeyboardInterrupt | SIGTERMException):
            return
        trainer.save_checkpoint(self.run.last_checkpoint)
        log.warning(
            "interrupted at epoch %d, step %d; saved %s. Resume with: "
            "python -m digits.train resume=%s",
            trainer.current_epoch,
            trainer.global_step,
            self.run.last_checkpoint,
            self.run.path,
        )


class StopOnDivergence(L.Callback):
    """Stop with a clear message when the training loss becomes NaN or infinite, or grows past
    `max_growth` times its value at the first step: a run that diverged must not end as a success
    with garbage saved as its best. Checks every `every_n_steps` steps, since each check copies the
    loss to the host. The first loss is kept in checkpoints, so a resumed run compares with it."""

    def __init__(self, every_n_steps: int, max_growth: float) -> None:
        self.every_n_steps = every_n_steps
        self.max_growth = max_growth
        self.first_loss: float | None = None

    def state_dict(self) -> dict[str, float | None]:
        return {"first_loss": self.first_loss}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.first_loss = state_dict.get("first_loss", self.first_loss)

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is None or (
            self.first_loss is not None and trainer.global_step % self.every_n_steps
        ):
            return
        value = float(loss)
        if self.first_loss is None and math.isfinite(value):
            self.first_loss = value
            return
        exploded = self.first_loss is not None and value > self.max_growth * max(
            self.first_loss, 0.01
        )
        if math.isfinite(value) and not exploded:
            return
        lr = trainer.optimizers[0].param_groups[0]["lr"]
        growth = f", over {self.max_growth:g} times its first value ({self.first_loss:.3g})"
        raise DigitsError(
            f"training loss is {value:.3g} by step {trainer.global_step} (epoch "
            f"{trainer.current_epoch}){growth if exploded else ''}: training diverged; lower "
            f"optimizer.lr (it is {lr:g}) or check the data; {saved_state(trainer)}"
        )


def saved_state(trainer: L.Trainer) -> str:
    """What a run stopped now leaves to resume from: its last.ckpt and the step it holds, if any."""
    last = next(
        (c.run.last_checkpoint for c in trainer.callbacks if isinstance(c, LastCheckpoint)), None
    )
    if last is None or not last.is_file():
        return "no checkpoint was saved before it"
    step = torch.load(last, map_location="cpu", weights_only=True).get("global_step")
    return f"{last} holds step {step}, saved before it"


class LastCheckpoint(Checkpoint):
    """Keep the run's checkpoints/last.ckpt current: after every training epoch and, if
    `every_n_train_steps` > 0, every that many steps, so a killed run loses little.

    Why not Lightning's: ModelCheckpoint(save_last=True) refreshes last.ckpt only when it saves a
    top-k checkpoint, i.e. when val/acc improves, and one ModelCheckpoint takes either an epoch or a
    step interval, not both. A Checkpoint subclass, so Lightning runs it after ModelCheckpoint and
    last.ckpt records the best checkpoint of the same epoch."""

    def __init__(self, run_dir: str, every_n_train_steps: int) -> None:
        self.run = RunDir(Path(run_dir))
        self.every_n_train_steps = every_n_train_steps

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self.every_n_train_steps and trainer.global_step % self.every_n_train_steps == 0:
            trainer.save_checkpoint(self.run.last_checkpoint)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking and not trainer.fast_dev_run:
            trainer.save_checkpoint(self.run.last_checkpoint)
