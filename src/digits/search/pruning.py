"""A search trial's side of the job: report the optimised metric after every validation, so that the
study's pruner can stop a hopeless trial early.

The sweeper tells each job which trial it is (`hydra.sweeper.trial_id`, with the study's storage and
name); the job reattaches to that trial through the storage, which works in the sweeper's process,
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
    trial_id = OmegaConf.select(sweeper, "trial_id")
    if trial_id is None:
        return []
    # Imported here: every training run imports this module, and the storage brings SQLAlchemy.
    import optuna
    from optuna_integration import PyTorchLightningPruningCallback

    from digits.search.study import StudyRef
    from digits.search.sweeper import build_pruner

    # The job decides whether to prune: its study needs the search's pruner.
    study = StudyRef(sweeper.storage, sweeper.study_name).load(build_pruner(sweeper))
    # Optuna has no public way to attach to a trial asked in another process; its own
    # integrations build the Trial from the study and the trial's id the same way.
    trial = optuna.trial.Trial(study, trial_id)
    return [PyTorchLightningPruningCallback(trial, monitor=monitor)]


def raise_if_pruned(callbacks: list[L.Callback]) -> None:
    """After fit: under DDP the callback stops every process instead of raising; raise here."""
    for callback in callbacks:
        if hasattr(callback, "check_pruned"):  # PyTorchLightningPruningCallback's
            callback.check_pruned()
