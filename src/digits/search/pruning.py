"""A search trial's side of the job: report the optimised metric after every validation, so that the
study's pruner can stop a hopeless trial early.

The sweeper tells each job which trial it is (`hydra.sweeper.trial_number`, with the study's storage
and name); the job reattaches to that trial through the storage, which works in the sweeper's process,
a joblib worker or a SLURM job alike.
"""

from __future__ import annotations

import lightning as L
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf
from optuna.exceptions import TrialPruned

__all__ = ["TrialPruned", "pruning_callbacks", "raise_if_pruned"]


def pruning_callbacks(monitor: str) -> list[L.Callback]:
    """Optuna's Lightning pruning callback for the trial this job runs, or [] outside a search.
    The callback raises TrialPruned from the validation the pruner finds hopeless."""
    if not HydraConfig.initialized():
        return []
    sweeper = HydraConfig.get().sweeper
    number = OmegaConf.select(sweeper, "trial_number")
    if number is None:
        return []
    # Imported here: every training run imports this module, and the storage brings SQLAlchemy.
    from optuna_integration import PyTorchLightningPruningCallback

    from digits.search.study import StudyRef
    from digits.search.sweeper import build_pruner

    # The job decides whether to prune: its trial's study needs the search's pruner.
    trial = StudyRef(sweeper.storage, sweeper.study_name).trial(number, build_pruner(sweeper))
    return [PyTorchLightningPruningCallback(trial, monitor=monitor)]


def raise_if_pruned(callbacks: list[L.Callback]) -> None:
    """After fit: under DDP the callback stops every process instead of raising; raise here."""
    for callback in callbacks:
        if hasattr(callback, "check_pruned"):  # PyTorchLightningPruningCallback's
            callback.check_pruned()
