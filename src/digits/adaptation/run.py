"""One adaptation run, as conf/adapt.yaml says: the trained model (ckpt_path) tested as it is on
the target's test split, adapted on the target's training images by Lightning's fit loop (their
labels unused), tested again on the same images; metrics.json holds both accuracies with their
intervals and the paired test between them, the adapted model is checkpoints/last.ckpt (no labels
to choose a checkpoint by: the last is the run's)."""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from digits.data.building import build_data
from digits.data.datamodule import DigitsDataModule
from digits.models.checkpoint import model_from, read_checkpoint
from digits.models.classifier import DigitClassifier
from digits.models.outputs import Logits
from digits.presentation.tables import print_final_metrics
from digits.runs import RunDir, manifest
from digits.runs.lineage import parent_checkpoint, parent_record
from digits.runs.significance import paired_verdict
from digits.runs.writing import write_json
from digits.training.cuda_check import drop_nvml_check_without_driver
from digits.training.fit import (
    instantiate_all,
    keep_test_predictions,
    runnable,
    scalars,
    throughput,
)
from digits.training.review import ReviewLogger
from digits.uncertainty import accuracy_interval, paired_test

log = logging.getLogger(__name__)
PROGRAM = "digits.adapt"


def method_of(cfg: DictConfig) -> str:
    """The adaptation's name as its class gives it (adabn, self_training)."""
    return get_class(cfg.adaptation["_target_"]).method


def adapted_parent(cfg: DictConfig) -> dict[str, Any]:
    """The model adapted, as the run records it (manifest, every checkpoint): its checkpoint,
    MD5 and run, and the method."""
    return parent_record(cfg.ckpt_path, key="ckpt_path") | {"method": method_of(cfg)}


def fresh_training(cfg: DictConfig) -> dict[str, Any]:
    """The module's settings that the adaptation sets anew: its optimizer, no schedule, nothing
    frozen (the rest, normalisation and calibration included, are the trained model's)."""
    optimizer = OmegaConf.to_container(cfg.optimizer, resolve=True)
    return {"optimizer": optimizer, "scheduler": None, "freeze": None,
            "unfreeze_at_epoch": None, "body_lr_scale": 1.0}  # fmt: skip


def right(collected: Logits, trainer: L.Trainer, datamodule: DigitsDataModule) -> np.ndarray:
    """Which test images the tested model got right, in the test set's order."""
    logits, labels = collected.in_dataset_order(trainer, len(datamodule.test_set))
    return (logits.argmax(dim=1) == labels).numpy()


def right_before(
    cfg: DictConfig, model: DigitClassifier, datamodule: DigitsDataModule
) -> np.ndarray:
    """Which test images the model gets right as it is, by Lightning's test loop on a trainer of
    its own (no logger, no checkpoints)."""
    collected = Logits("test")
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        callbacks=[collected],
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
    )
    trainer.test(model, datamodule=datamodule, verbose=False)
    return right(collected, trainer, datamodule)


def before_and_after(before: np.ndarray, after: np.ndarray) -> dict[str, Any]:
    """The trained model's test accuracy (and interval) before adaptation, and McNemar's test of
    the adapted model against it on the same images, in numbers and in words."""
    test = paired_test(before, after)
    names = {"a": "the model as it was", "b": "the adapted model"}
    return {
        "test/acc_before": float(before.mean()),
        "test/acc_before_interval": accuracy_interval(int(before.sum()), len(before)),
        "adapt/against_before": test,
        "verdict": paired_verdict(names, test, alpha=0.05, tests=1),
    }


def adapt(cfg: DictConfig) -> dict[str, Any]:
    """Adapt and test as `cfg` says; return the final metrics (also written to metrics.json)."""
    run_dir = RunDir(Path(cfg.paths.output_dir))
    drop_nvml_check_without_driver()
    if cfg.seed is not None:
        L.seed_everything(cfg.seed, workers=True)
    checkpoint = read_checkpoint(parent_checkpoint(cfg.ckpt_path, "ckpt_path"))
    datamodule = build_data(cfg.data)
    start = time.perf_counter()
    labelled = datamodule.LABELLED  # else nothing to score: data=unlabelled
    before = right_before(cfg, model_from(checkpoint), datamodule) if labelled else None

    method = instantiate(cfg.adaptation, _partial_=True)
    model = model_from(checkpoint, module=method, **fresh_training(cfg))
    model.parent = adapted_parent(cfg)
    model.train()  # model_from gives it in inference mode
    loggers = instantiate_all(cfg.get("logger"), "logger")
    tested = Logits("test")
    callbacks = [*instantiate_all(cfg.get("callbacks"), "callbacks"), tested]
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=runnable(callbacks, loggers), logger=loggers or False
    )
    with warnings.catch_warnings():  # AdaBN has no optimizer, by design
        warnings.filterwarnings("ignore", message=".*configure_optimizers` returned `None`")
        trainer.fit(model, datamodule=datamodule)
    metrics = scalars(trainer.callback_metrics) | throughput(trainer, datamodule, resumed=False)
    if labelled:
        trainer.test(model, datamodule=datamodule, verbose=False)
        metrics |= scalars(trainer.callback_metrics)
        metrics |= keep_test_predictions(trainer, model, tested, datamodule, run_dir)
        metrics |= before_and_after(before, right(tested, trainer, datamodule))
    else:
        metrics["verdict"] = (
            "not scored: the images have no labels (score the adapted model with digits.evaluate "
            "on labelled digits of the same kind)"
        )
    metrics |= {"method": method_of(cfg), "epochs": trainer.current_epoch,
                "global_step": trainer.global_step,
                "wall_time_s": round(time.perf_counter() - start, 2),
                # No labels to choose by: the run stands by its last weights.
                "best_checkpoint": str(run_dir.last_checkpoint)}  # fmt: skip
    write_json(run_dir.metrics_file, metrics)
    lineage = f"adapted from `{cfg.ckpt_path}` by {method_of(cfg)} (digits.adapt)"
    for logger in loggers:
        if isinstance(logger, ReviewLogger):
            logger.log_run(cfg, metrics, manifest.command_line(PROGRAM), trainer.global_step,
                           lineage)  # fmt: skip
        logger.finalize("success")
    print_final_metrics(PROGRAM, metrics, run_dir.path)
    return metrics
