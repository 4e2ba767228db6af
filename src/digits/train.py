"""Train a digit classifier: `python -m digits.train model=cnn optimizer=adam` (or `digits-train`).

Hydra composes conf/train.yaml from its groups (data, model, module, optimizer, scheduler, trainer,
logger, callbacks); digits.training.fit runs it: fits, tests the best checkpoint on the official
test set and leaves everything about the run in its own directory (see README).
"""

from __future__ import annotations

import logging
import math
import sys
from contextlib import nullcontext
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

# The schemas conf/train.yaml's groups extend, which each of these modules stores when imported.
import digits.data.options
import digits.models.settings
import digits.training.settings  # noqa: F401
from digits.cli import silence_known_warnings
from digits.config import config_dir
from digits.config.command_line import check_command_line
from digits.errors import reports_user_errors, user_error
from digits.runs import RunDir
from digits.runs.claim import release_claims
from digits.search.checks import check_search
from digits.search.pruning import TrialPruned
from digits.training.argv import (
    check_dir_writable,
    failed_jobs,
    pinned_run_dir,
    reproduce_arguments,
    resume_arguments,
)
from digits.training.checks import check_train
from digits.training.fit import owned_and_recorded, run

log = logging.getLogger(__name__)
# conf/hydra/default.yaml sends this logger to the run's log file only.
TRACEBACKS = logging.getLogger("digits.tracebacks")


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


def main() -> None:
    """`python -m digits.train`: check the command line, hold the run directory, then run."""
    args = reports_user_errors(reproduce_arguments)(sys.argv[1:])
    args = reports_user_errors(resume_arguments)(args)
    reports_user_errors(check_dir_writable)(args)
    composed = reports_user_errors(check_command_line)("train", args, check_train, check_search)
    sys.argv[1:] = pinned_run_dir(composed, args)
    try:
        hydra_main()
    finally:
        release_claims()
    failed_jobs(composed, sys.argv[1:])


if __name__ == "__main__":
    main()
