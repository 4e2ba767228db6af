"""One training run, as its composed config says: instantiate the data, the model, its loggers and
callbacks and the Trainer; fit; test the best checkpoint on the official test set; write
metrics.json, the test predictions image by image and the run's review (TensorBoard's HPARAMS, its
card)."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, Timer
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from digits.data.building import build_data
from digits.data.datamodule import DigitsDataModule
from digits.errors import DigitsError
from digits.models.base import FIT_METRICS, DigitsModule
from digits.models.modules import module_for
from digits.models.outputs import Logits, PerSourceAccuracy
from digits.presentation.tables import print_final_metrics
from digits.runs import RunDir, holding, manifest
from digits.runs.per_image import PerImageResults
from digits.runs.writing import write_json
from digits.search.pruning import pruning_callbacks, raise_if_pruned
from digits.training import reproduce as reproduction
from digits.training.cuda_check import drop_nvml_check_without_driver
from digits.training.review import ReviewLogger
from digits.training.transfer import start_from_parent
from digits.training.tuning import tune

log = logging.getLogger(__name__)


def scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Tensor-or-number metrics as plain floats."""
    return {
        name: value.item() if isinstance(value, torch.Tensor) else float(value)
        for name, value in metrics.items()
    }


def instantiate_all(group: DictConfig | None, key: str) -> list[Any]:
    """Instantiate every entry of a config group such as `callbacks` or `logger`; a value the
    library refuses (Lightning checks its callbacks' arguments only when they are built) is a
    user's mistake, said in one line naming the entry."""
    built = []
    for name, entry in (group or {}).items():
        if not entry or "_target_" not in entry:
            continue
        try:
            built.append(instantiate(entry))
        except InstantiationException as error:
            if not isinstance(error.__cause__, ValueError | TypeError | MisconfigurationException):
                raise
            reason = " ".join(str(error.__cause__).split())
            raise DigitsError(f"{key}.{name}: {reason}") from error
    return built


def runnable(callbacks: list[L.Callback], loggers: list[Logger]) -> list[L.Callback]:
    """The callbacks that can run with these loggers: LearningRateMonitor refuses to run without
    one."""
    if loggers:
        return callbacks
    return [c for c in callbacks if not isinstance(c, LearningRateMonitor)]


def throughput(trainer: L.Trainer, datamodule: L.LightningDataModule, resumed: bool) -> dict:
    """Training images per second over the training loop alone (Lightning's Timer callback: no
    start-up, data loading from disk or testing), when this fit started from scratch."""
    timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
    if timer is None or resumed or not timer.time_elapsed("train"):
        return {}
    seconds = timer.time_elapsed("train")
    images = trainer.global_step * datamodule.hparams.batch_size * trainer.world_size
    return {"train_time_s": round(seconds, 3), "train_images_per_s": round(images / seconds, 1)}


def early_stop(trainer: L.Trainer) -> dict[str, int]:
    """The epoch an EarlyStopping callback (callbacks=early_stopping) ended training at, if it did."""
    stopper = trainer.early_stopping_callback
    return (
        {"stopped_early_at_epoch": stopper.stopped_epoch}
        if stopper and stopper.stopped_epoch
        else {}
    )


def validated_images(trainer: L.Trainer, datamodule: DigitsDataModule) -> dict[str, int]:
    """How many images each validation scored, when it scored the whole split: a k-fold
    estimate pools its folds' validations by it (digits.runs.comparison)."""
    limit = trainer.limit_val_batches  # 1 (an int) would be one batch; 1.0 the whole split
    whole = isinstance(limit, float) and limit == 1.0 and getattr(datamodule, "val_set", None)
    return {"val/images": len(datamodule.val_set)} if whole else {}


def keep_test_predictions(
    trainer: L.Trainer,
    model: DigitsModule,
    tested: Logits,
    datamodule: DigitsDataModule,
    run_dir: RunDir,
) -> dict[str, Any]:
    """Each test image's result in the run's test_predictions.csv; for metrics.json, how many were
    right, the accuracy's 95% interval and which test set it was (its fingerprint)."""
    outputs, labels = tested.in_dataset_order(trainer, len(datamodule.test_set))
    results = model.results_of(outputs, labels)
    if trainer.is_global_zero:
        results.write(run_dir.test_predictions_file)
    fingerprint = {"images": len(labels)} | datamodule.test_set_id()
    summary = results.summary() | {"test/set": fingerprint}
    for name, part in datamodule.source_slices("test").items():  # each source of a mix, on its own
        source = PerImageResults(*(column[part] for column in results))
        summary |= source.summary(f"test/{name}") | {
            f"test/{name}/acc": float(source.correct.mean())
        }
    return summary


def run(cfg: DictConfig) -> dict[str, Any]:
    """Fit and test as `cfg` says; return the final metrics (also written to metrics.json)."""
    run_dir = RunDir(Path(cfg.paths.output_dir))
    drop_nvml_check_without_driver()
    if cfg.seed is not None:
        L.seed_everything(cfg.seed, workers=True)

    datamodule = build_data(cfg.data)
    model = module_for(cfg.model)(
        net=cfg.model, optimizer=cfg.optimizer, scheduler=cfg.get("scheduler"), **cfg.module
    )
    if cfg.init_from and not cfg.ckpt_path:  # a resumed child has its weights in ckpt_path
        start_from_parent(model, cfg)
    loggers: list[Logger] = instantiate_all(cfg.get("logger"), "logger")
    callbacks = instantiate_all(cfg.get("callbacks"), "callbacks")
    callbacks += pruning_callbacks(cfg.optimized_metric)  # in a search's trial only
    tested = Logits("test")
    callbacks += [tested, PerSourceAccuracy()]
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=runnable(callbacks, loggers), logger=loggers or False
    )

    if cfg.get("tune"):
        return tune(cfg, trainer, model, datamodule, run_dir)
    start = time.perf_counter()
    metrics: dict[str, Any] = {}
    if cfg.train:
        try:
            trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
        except SIGTERMException as stop:
            # Lightning stopped after the step and InterruptCheckpoint saved it: exit 143.
            raise SystemExit(128 + signal.SIGTERM) from stop
        raise_if_pruned(callbacks)
        # A resumed run with no training left logs nothing: its checkpoint remembers.
        fitted = model.restored_metrics | scalars(trainer.callback_metrics)
        metrics |= {name: fitted[name] for name in FIT_METRICS if name in fitted}
        per_source = (f"val/{name}/acc" for name in datamodule.source_slices("val"))
        metrics |= {name: fitted[name] for name in per_source if name in fitted}
        metrics |= throughput(trainer, datamodule, resumed=cfg.ckpt_path is not None)
        metrics |= early_stop(trainer) | validated_images(trainer, datamodule)
    best = next(
        (c.best_model_path for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint)),
        None,
    )
    if cfg.test:
        ckpt = best or (None if cfg.train else cfg.ckpt_path)
        trainer.test(model, datamodule=datamodule, ckpt_path=ckpt, verbose=False)
        metrics |= scalars(trainer.callback_metrics)
        metrics |= keep_test_predictions(trainer, model, tested, datamodule, run_dir)
    metrics["epochs"] = trainer.current_epoch
    metrics["global_step"] = trainer.global_step
    metrics["wall_time_s"] = round(time.perf_counter() - start, 2)
    if best:  # a test-only run (train=false) saves none
        metrics["best_checkpoint"] = best

    write_json(run_dir.metrics_file, metrics)
    for logger in loggers:
        if isinstance(logger, ReviewLogger):  # HPARAMS, the run's card and config in TensorBoard
            logger.log_run(cfg, metrics, manifest.command_line(), trainer.global_step)
        else:  # the whole config
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        logger.finalize("success")
    print_final_metrics("digits.train", metrics, run_dir.path)
    if cfg.get("reproduce"):
        reproduction.compare_with_original(RunDir(Path(cfg.reproduce)), run_dir)
    return metrics


@contextmanager
def owned_and_recorded(run_dir: RunDir, cfg: DictConfig) -> Iterator[None]:
    """Hold the run directory and keep its manifest while the run lasts."""
    with holding.owned(run_dir), manifest.recording(run_dir, cfg):
        yield
