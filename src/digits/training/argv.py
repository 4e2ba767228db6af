"""`digits.train`'s command line before Hydra reads it, and its exit after: `resume=` and `reproduce=`
turned into the run's own overrides, the run (or sweep) directory resolved now (digits.runs.claim
holds it when Hydra starts), and a multirun's failed jobs said at its end.

Why the command line is rewritten, not left to Hydra: resume= and reproduce= stand for another
run's overrides, which Hydra must compose (and record in .hydra/overrides.yaml, and sweep) as if
typed; its callbacks (on_run_start, on_multirun_start) see a config already composed, and its
directory already chosen. And the default directory holds the time: the up-front check's
composition and Hydra's own would name two folders unless the first one's is given to the second."""

from __future__ import annotations

import sys
from pathlib import Path

from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from digits.config.command_line import is_multirun
from digits.config.hydra_flags import override, override_value
from digits.config.machine import check_writable
from digits.errors import DigitsError
from digits.runs import RunDir, SweepDir
from digits.training.settings import moved

# A run's overrides that `resume=` does not repeat: where it starts from, and how it was claimed.
NOT_CONTINUED = ("resume=", "ckpt_path=", "overwrite=")
# Overrides of the original that say where it came from, not what it was.
NOT_REPEATED = ("resume=", "ckpt_path=", "reproduce=", "overwrite=")


def reproduce_arguments(args: list[str]) -> list[str]:
    """The original run's overrides (settings that moved since, at their new keys), then the
    user's, then `reproduce=<original>` (a new run directory, as for any run)."""
    given = [a for a in args if a.startswith("reproduce=")]
    if not given:
        return args
    if any(a.startswith("resume=") for a in args):
        raise DigitsError(
            "reproduce= and resume= together: give one (resume continues a run in place)"
        )
    run = RunDir(Path(override_value(given[-1])).expanduser().resolve())
    if not run.overrides_file.is_file() or run.metrics() is None:
        raise DigitsError(
            f"reproduce={run.path}: not a finished run (needs .hydra/overrides.yaml and metrics.json)"
        )
    previous = [moved(o) for o in run.overrides() if not o.startswith(NOT_REPEATED)]
    rest = [a for a in args if not a.startswith("reproduce=")]
    return [*previous, *rest, override("reproduce", run.path)]


def resume_arguments(args: list[str]) -> list[str]:
    """`resume=<run dir>`: the run's own overrides (settings that moved since, at their new keys),
    then the user's, in the same directory from its last checkpoint (epoch and step counters,
    TensorBoard curves and checkpoints continue)."""
    given = [a for a in args if a.startswith("resume=")]
    if not given:
        return args
    run = RunDir(Path(override_value(given[-1])).expanduser().resolve())
    if not run.overrides_file.is_file() or not run.last_checkpoint.is_file():
        raise DigitsError(f"resume={run.path}: not a run directory with checkpoints/last.ckpt")
    if any(a.startswith("overwrite=") for a in args):
        raise DigitsError(
            "resume= and overwrite= together: give one (resume continues the run in its directory)"
        )
    if any(a.startswith("init_from=") for a in args):
        raise DigitsError(
            "resume= and init_from= together: give one (resume continues the run in its "
            "directory from its own last checkpoint; init_from starts a new run from another "
            "model's weights)"
        )
    previous = [moved(o) for o in run.overrides() if not o.startswith(NOT_CONTINUED)]
    rest = [a for a in args if not a.startswith("resume=")]
    ours = [
        override("resume", run.path),
        override("ckpt_path", run.last_checkpoint),
        override("hydra.run.dir", run.path),
    ]
    return [*previous, *rest, *ours]


def check_dir_writable(args: list[str]) -> None:
    """A run (or sweep) directory given on the command line (or by resume=) must be writable."""
    multirun = "-m" in args or "--multirun" in args
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    given = [override_value(a) for a in args if a.startswith(f"{key}=")]
    if given:
        check_writable(given[-1], key, f"choose a writable folder for the {key.split('.')[1]}")


def pinned_run_dir(composed: DictConfig | None, args: list[str]) -> list[str]:
    """The command line with the run (or sweep) directory Hydra would choose resolved now and
    given to it, so that the checks, the claim (digits.runs.claim, when Hydra starts) and what
    this command prints afterwards all name the same folder."""
    if composed is None or rank_zero_only.rank != 0:  # DDP's other ranks: rank 0's, as given
        return args
    key = "hydra.sweep.dir" if is_multirun(composed) else "hydra.run.dir"
    return with_override(args, override(key, Path(OmegaConf.select(composed, key))))


def with_override(args: list[str], override: str) -> list[str]:
    """`override` added after the command line's last override: Hydra's argument parser takes
    its overrides in one run, before or after its flags (-m), not on both sides."""
    last = max((i for i, arg in enumerate(args) if not arg.startswith("-")), default=len(args) - 1)
    return [*args[: last + 1], override, *args[last + 1 :]]


def failed_jobs(composed: DictConfig | None, args: list[str]) -> None:
    """A multirun whose jobs failed exits 1 after its summary, naming them. (In a search a failed
    trial is a result its study records.)"""
    given = [override_value(a) for a in args if a.startswith("hydra.sweep.dir=")]
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
