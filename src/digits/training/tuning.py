"""`python -m digits.train tune=lr_find` or `tune=batch_size`: Lightning's Tuner instead of
training, its answer printed and saved in the run directory (tune.json, lr_find.png)."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
from lightning.pytorch.tuner import Tuner
from omegaconf import DictConfig, OmegaConf

from digits.atomic import save_figure
from digits.runs import RunDir
from digits.runs.writing import write_json

log = logging.getLogger(__name__)


def lr_key(cfg: DictConfig) -> str:
    """The setting a found lr goes into: a one-cycle schedule's peak replaces the optimizer's lr."""
    return "scheduler.max_lr" if OmegaConf.select(cfg, "scheduler.max_lr") else "optimizer.lr"


def tune(
    cfg: DictConfig,
    trainer: L.Trainer,
    model: L.LightningModule,
    datamodule: L.LightningDataModule,
    run_dir: RunDir,
) -> dict[str, Any]:
    """Run the finder `cfg.tune` names; return (and write to tune.json) what it found."""
    arguments = OmegaConf.to_container(cfg.tune, resolve=True)
    finder = arguments.pop("finder")
    tuner = Tuner(trainer)
    if finder == "lr_find":
        # update_attr=False: the module builds its optimizer from the config, it has no lr field.
        found = tuner.lr_find(model, datamodule=datamodule, update_attr=False, **arguments)
        result = {"suggested_lr": found.suggestion(), "lr": found.results["lr"]}
        result["loss"] = found.results["loss"]
        lr = f"{result['suggested_lr']:.3g}"
        figure = found.plot(suggest=True)
        figure.axes[0].set_title(f"Lightning's lr finder: suggested lr {lr} (red dot)")
        save_figure(figure, run_dir.lr_find_plot, "the learning-rate plot", dpi=120)
        advice = f"suggested lr: {lr} (train with {lr_key(cfg)}={lr}); plot: {run_dir.lr_find_plot}"
    else:
        size = tuner.scale_batch_size(model, datamodule=datamodule, **arguments)
        result = {"batch_size": size}
        advice = f"largest batch that ran: {size} (train with data.batch_size={size})"
    write_json(run_dir.tune_file, {"finder": finder, **result})
    log.info(advice)
    print(advice)  # the command's answer: on the console too (the notes are the log's only)
    return result
