"""The benchmark's probe (tools/bench.py): time for a training run to reach a test accuracy.

    python -m digits.train ... +callbacks.time_to_accuracy._target_=time_to_accuracy.TimeToAccuracy \
        +callbacks.time_to_accuracy.target=0.99          (with tools/ on PYTHONPATH)
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L
import torch


class TimeToAccuracy(L.Callback):
    """After each training epoch, score the test set; stop once `target` accuracy is reached.
    Writes time_to_accuracy.json (training time per epoch, test scoring excluded) into the run
    directory. Uses the test set to decide when to stop: for measuring, never for model selection.
    It scores by hand because Lightning cannot run its test loop in the middle of fit."""

    def __init__(self, target: float) -> None:
        self.target = target
        self.history: list[dict[str, float]] = []
        self._train_time = 0.0
        self._epoch_start = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = time.perf_counter()

    @torch.no_grad()
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._train_time += time.perf_counter() - self._epoch_start
        datamodule = trainer.datamodule
        datamodule.setup("test")
        test = datamodule.test_set
        was_training = pl_module.training
        pl_module.eval()
        correct = 0
        for start in range(0, len(test), 1000):
            images = test.images[start : start + 1000].unsqueeze(1).float().div(255)
            predicted = pl_module(images.to(pl_module.device)).argmax(dim=1)
            labels = test.labels[start : start + 1000].to(predicted.device)
            correct += int((predicted == labels).sum())
        pl_module.train(was_training)
        self._record(trainer, correct / len(test))

    def _record(self, trainer: L.Trainer, accuracy: float) -> None:
        epoch = {"epoch": trainer.current_epoch + 1, "train_time_s": self._train_time}
        self.history.append(epoch | {"test_acc": accuracy})
        reached = accuracy >= self.target
        trainer.should_stop = trainer.should_stop or reached
        if trainer.is_global_zero:
            result = {"target": self.target, "reached": reached, "history": self.history}
            if reached:
                result["time_to_target_s"] = self._train_time
            out = Path(trainer.default_root_dir) / "time_to_accuracy.json"
            out.write_text(json.dumps(result, indent=2) + "\n")
