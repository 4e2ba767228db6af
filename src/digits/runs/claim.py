"""Claiming a run (or sweep) directory before Hydra writes into it, whatever route the config came
by: a Hydra callback, so `--config-dir`, `--config-name` and a config file's own `hydra.run.dir`
are held to the same rule as the command line. Hydra calls `on_run_start` and
`on_multirun_start` before it creates the directory or writes `.hydra/` and the log.

The rule: a directory that holds a run is refused, but by the run that continues it (`resume=`, or
`ckpt_path=` inside it), or moved aside whole with `overwrite=true`. A sweep directory that holds
a single run, or another multirun's jobs (but a search continuing its own study), is refused too;
each job of a sweep must get its own folder; two multiruns into one folder: the second is refused.
The claim lasts as long as the process (the lock goes with it)."""

from __future__ import annotations

import atexit
import contextlib
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from digits.errors import DigitsError, reports_user_errors
from digits.runs.holding import HELD, claim_sweep, claimed, owned
from digits.runs.run_dir import RunDir, SweepDir

# What a sweep's subdir must name so that each job gets a folder of its own.
PER_JOB = ("${hydra.job.num}", "${hydra.job.id}")
_CLAIMS = ExitStack()  # held until release_claims(), or the process's end


def release_claims() -> None:
    """Let go of every directory this process claimed (digits.train, once Hydra is done)."""
    _CLAIMS.close()


atexit.register(release_claims)


def _remove_if_unused(folder: Path, made: list[Path]) -> None:
    """The folders the claim made (`made`: `folder` and the parents it needed), if nothing was
    written into them (a multirun refused after its claim, by its sweeper), go again: a refused
    command leaves nothing behind."""
    if not folder.is_dir() or {p.name for p in folder.iterdir()} - {RunDir(folder).lock_file.name}:
        return
    with contextlib.suppress(OSError):
        RunDir(folder).lock_file.unlink(missing_ok=True)
        for empty in made:  # deepest first; stops at the first that is not empty
            empty.rmdir()


class ClaimRunDir(Callback):
    """conf/hydra/default.yaml's callback: claims the run or sweep directory (see the module).
    `continued_by_checkpoint`: whether a `ckpt_path=` inside the directory continues its run
    (digits.train's resumption); digits.adapt's ckpt_path is the model it starts from, never the
    run it writes."""

    def __init__(self, continued_by_checkpoint: bool) -> None:
        self.continued_by_checkpoint = continued_by_checkpoint

    @reports_user_errors
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if rank_zero_only.rank != 0:  # DDP's other processes join rank 0's run
            return
        run = RunDir(Path(OmegaConf.select(config, "hydra.run.dir")))
        if run.path.resolve() in HELD:  # claimed already by this process
            return
        ckpt = config.get("ckpt_path")
        continuing = bool(config.get("resume")) or (
            self.continued_by_checkpoint
            and ckpt is not None
            and RunDir.of_checkpoint(Path(ckpt).absolute()) == RunDir(run.path.absolute())
        )
        aside = _CLAIMS.enter_context(claimed(run, continuing, bool(config.get("overwrite"))))
        if aside is not None:
            print(f"overwrite=true: moved the run that was in {run.path} to {aside}")

    @reports_user_errors
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep = SweepDir(Path(OmegaConf.select(config, "hydra.sweep.dir")))
        subdir = str(OmegaConf.to_container(config.hydra.sweep, resolve=False)["subdir"])
        if not any(key in subdir for key in PER_JOB) or subdir.startswith(("/", "..")):
            raise DigitsError(
                f"hydra.sweep.subdir={subdir}: each job needs a folder of its own inside the "
                "sweep directory; name it by ${hydra.job.num} (the default) or ${hydra.job.id}"
            )
        if RunDir(sweep.path).holds_run():
            raise DigitsError(
                f"hydra.sweep.dir={sweep.path}: a single run's directory, not a sweep's; give "
                "another hydra.sweep.dir"
            )
        search = config.hydra.runtime.choices.get("hydra/sweeper") == "optuna"
        aside = claim_sweep(sweep, continuing=search, overwrite=bool(config.get("overwrite")))
        if aside is not None:
            print(f"overwrite=true: moved the multirun that was in {sweep.path} to {aside}")
        made = [p for p in (sweep.path, *sweep.path.parents) if not p.exists()]
        if made:
            _CLAIMS.callback(_remove_if_unused, sweep.path, made)  # after the lock's release
        try:
            _CLAIMS.enter_context(owned(RunDir(sweep.path)))  # one multirun at a time in it
        except DigitsError as error:
            raise DigitsError(
                f"hydra.sweep.dir={sweep.path}: another multirun is writing there; give another "
                "hydra.sweep.dir, or wait for it to end"
            ) from error
