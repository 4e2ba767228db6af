"""Train a digit classifier: `python -m digits.train model=cnn optimizer=adam` (or `digits-train`).

Hydra composes conf/train.yaml from its groups (data, model, module, optimizer, scheduler, trainer,
logger, callbacks); this module instantiates them, fits, tests the best checkpoint on the official test set and
leaves everything about the run in its own directory (see README).
"""

from __future__ import annotations

import logging
import math
import signal
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, Timer
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from digits.cli import silence_known_warnings
from digits.config import config_dir
from digits.config.checks import check_command_line, check_train, check_writable, is_multirun
from digits.config.schema import moved
from digits.errors import DigitsError, reports_user_errors, user_error
from digits.models import DigitClassifier
from digits.models.classifier import FIT_METRICS
from digits.presentation.tables import print_summary
from digits.runs import RunDir, SweepDir, manifest
from digits.runs.writing import write_json
from digits.search.trial import TrialPruned, pruning_callbacks, raise_if_pruned
from digits.training import reproduce as reproduction
from digits.training.review import ReviewLogger

log = logging.getLogger(__name__)
# conf/hydra/default.yaml sends this logger to the run's log file only.
TRACEBACKS = logging.getLogger("digits.tracebacks")


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


def run(cfg: DictConfig) -> dict[str, Any]:
    """Fit and test as `cfg` says; return the final metrics (also written to metrics.json)."""
    run_dir = RunDir(Path(cfg.paths.output_dir))
    if cfg.seed is not None:
        L.seed_everything(cfg.seed, workers=True)

    datamodule: L.LightningDataModule = instantiate(cfg.data)
    model = DigitClassifier(
        net=cfg.model, optimizer=cfg.optimizer, scheduler=cfg.get("scheduler"), **cfg.module
    )
    loggers: list[Logger] = instantiate_all(cfg.get("logger"), "logger")
    callbacks = instantiate_all(cfg.get("callbacks"), "callbacks")
    callbacks += pruning_callbacks(cfg.optimized_metric)  # in a search's trial only
    if not loggers:  # LearningRateMonitor refuses to run without a logger
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)

    if cfg.get("tune"):
        from digits.training.tuning import tune

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
        metrics |= throughput(trainer, datamodule, resumed=cfg.ckpt_path is not None)
        metrics |= early_stop(trainer)
    best = next(
        (c.best_model_path for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint)),
        None,
    )
    if cfg.test:
        ckpt = best or (None if cfg.train else cfg.ckpt_path)
        trainer.test(model, datamodule=datamodule, ckpt_path=ckpt, verbose=False)
        metrics |= scalars(trainer.callback_metrics)
    metrics["epochs"] = trainer.current_epoch
    metrics["global_step"] = trainer.global_step
    metrics["wall_time_s"] = round(time.perf_counter() - start, 2)
    if best is not None:
        metrics["best_checkpoint"] = best

    log.info("final metrics: %s", metrics)
    write_json(run_dir.metrics_file, metrics)
    for logger in loggers:
        if isinstance(logger, ReviewLogger):  # HPARAMS, the run's card and config in TensorBoard
            logger.log_run(cfg, metrics, manifest.command_line(), trainer.global_step)
        else:  # the whole config
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        logger.finalize("success")
    print_summary("digits.train", metrics, run_dir.path)
    if cfg.get("reproduce"):
        reproduction.report(RunDir(Path(cfg.reproduce)), run_dir)
    return metrics


@contextmanager
def owned_and_recorded(run_dir: RunDir, cfg: DictConfig) -> Iterator[None]:
    """Hold the run directory and keep its manifest while the run lasts."""
    with run_dir.owned(), manifest.recording(run_dir, cfg):
        yield


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
@reports_user_errors
def hydra_main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns `optimized_metric` (validation accuracy) for sweepers.

    In a multirun a failing job is logged and recorded in its directory (error.txt) and the sweep
    goes on; its result is NaN, which the search records as a failed trial. A trial the search's
    pruner stops raises TrialPruned to the sweeper."""
    silence_known_warnings()
    hydra_config = HydraConfig.get()
    run_dir = RunDir(Path(hydra_config.runtime.output_dir))
    log.info("run directory: %s", run_dir.path)
    try:
        # The run owns its directory (DDP's other processes are part of it and write nothing).
        with owned_and_recorded(run_dir, cfg) if rank_zero_only.rank == 0 else nullcontext():
            metrics = run(cfg)
    except TrialPruned as pruned:
        log.info("%s", pruned)
        raise
    except Exception as error:
        if hydra_config.mode != RunMode.MULTIRUN:
            raise
        # The traceback goes to the job's log only: the console gets one line per failed job.
        TRACEBACKS.error("job failed", exc_info=error)
        error = user_error(error) or error
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        log.error("job %s failed: %s (traceback in its log)", hydra_config.job.num, reason)
        run_dir.error_file.write_text(reason + "\n")
        return math.nan
    return metrics.get(cfg.optimized_metric)


# A run's overrides that `resume=` does not repeat: where it starts from, and how it was claimed.
NOT_CONTINUED = ("resume=", "ckpt_path=", "overwrite=")


def resume_arguments(args: list[str]) -> list[str]:
    """`resume=<run dir>`: the run's own overrides (settings that moved since, at their new keys),
    then the user's, in the same directory from its last checkpoint (epoch and step counters,
    TensorBoard curves and checkpoints continue)."""
    given = [a for a in args if a.startswith("resume=")]
    if not given:
        return args
    run = RunDir(Path(given[-1].split("=", 1)[1]).expanduser().resolve())
    if not run.overrides_file.is_file() or not run.last_checkpoint.is_file():
        raise DigitsError(f"resume={run.path}: not a run directory with checkpoints/last.ckpt")
    if any(a.startswith("overwrite=") for a in args):
        raise DigitsError(
            "resume= and overwrite= together: give one (resume continues the run in its directory)"
        )
    previous = [moved(o) for o in run.overrides() if not o.startswith(NOT_CONTINUED)]
    rest = [a for a in args if not a.startswith("resume=")]
    ours = [f"resume={run.path}", f"ckpt_path={run.last_checkpoint}", f"hydra.run.dir={run.path}"]
    return [*previous, *rest, *ours]


def check_dir_writable(args: list[str]) -> None:
    """A run (or sweep) directory given on the command line (or by resume=) must be writable."""
    multirun = "-m" in args or "--multirun" in args
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    given = [a.split("=", 1)[1] for a in args if a.startswith(f"{key}=")]
    if given:
        check_writable(given[-1], key, f"choose a writable folder for the {key.split('.')[1]}")


@contextmanager
def claimed_run_dir(composed: DictConfig | None, args: list[str]) -> Iterator[list[str]]:
    """A single run holds its directory from before Hydra writes into it (.hydra/, the log) to its
    end: the directory Hydra would choose is resolved now and given to Hydra. A directory that
    holds a run is refused, but by the run that continues it (resume=, or ckpt_path= in its
    checkpoints/), or moved aside with overwrite=true. A multirun's sweep directory is resolved
    and checked the same way (its jobs each hold theirs: hydra_main). Yields the command line."""
    if composed is None or rank_zero_only.rank != 0:  # DDP's other ranks write nothing
        yield args
        return
    overwrite = bool(composed.get("overwrite"))
    if is_multirun(composed):
        sweep = SweepDir(Path(OmegaConf.select(composed, "hydra.sweep.dir")))
        search = composed.hydra.runtime.choices.get("hydra/sweeper") == "optuna"
        aside = sweep.claim(continuing=search, overwrite=overwrite)
        if aside is not None:
            print(f"overwrite=true: moved the multirun that was in {sweep.path} to {aside}")
        yield with_override(args, f"hydra.sweep.dir={sweep.path}")
        return
    run_dir = RunDir(Path(OmegaConf.select(composed, "hydra.run.dir")))
    ckpt = composed.get("ckpt_path")
    continuing = bool(composed.get("resume")) or (
        ckpt is not None
        and RunDir.of_checkpoint(Path(ckpt).absolute()) == RunDir(run_dir.path.absolute())
    )
    with run_dir.claimed(continuing, overwrite) as aside:
        if aside is not None:
            print(f"overwrite=true: moved the run that was in {run_dir.path} to {aside}")
        yield with_override(args, f"hydra.run.dir={run_dir.path}")


def with_override(args: list[str], override: str) -> list[str]:
    """`override` added after the command line's last override: Hydra's argument parser takes
    its overrides in one run, before or after its flags (-m), not on both sides."""
    last = max((i for i, arg in enumerate(args) if not arg.startswith("-")), default=len(args) - 1)
    return [*args[: last + 1], override, *args[last + 1 :]]


def failed_jobs(composed: DictConfig | None, args: list[str]) -> None:
    """A multirun whose jobs failed exits 1 after its summary, naming them. (In a search a failed
    trial is a result its study records.)"""
    given = [a.split("=", 1)[1] for a in args if a.startswith("hydra.sweep.dir=")]
    if composed is None or not is_multirun(composed) or not given:
        return
    if composed.hydra.runtime.choices.get("hydra/sweeper") == "optuna":
        return
    jobs = SweepDir(Path(given[-1])).jobs() if Path(given[-1]).is_dir() else []
    failed = [job for job in jobs if job.failed()]
    if failed:
        reasons = "; ".join(
            f"job {job.path.name}: {job.error_file.read_text().strip()}" for job in failed[:3]
        )
        print(f"error: {len(failed)} of {len(jobs)} jobs failed ({reasons})", file=sys.stderr)
        sys.exit(1)


def main() -> None:
    """`python -m digits.train`: check the command line, hold the run directory, then run."""
    args = reports_user_errors(reproduction.reproduce_arguments)(sys.argv[1:])
    args = reports_user_errors(resume_arguments)(args)
    reports_user_errors(check_dir_writable)(args)
    composed = reports_user_errors(check_command_line)("train", args, check_train)
    with ExitStack() as stack:
        sys.argv[1:] = reports_user_errors(stack.enter_context)(claimed_run_dir(composed, args))
        hydra_main()
    failed_jobs(composed, sys.argv[1:])


if __name__ == "__main__":
    main()
