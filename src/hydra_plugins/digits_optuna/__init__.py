"""Hydra instantiates sweepers only from classes defined in the `hydra_plugins` namespace: digits'
Optuna sweeper, defined here by name (the code is digits.search.sweeper's).

Hydra imports every `hydra_plugins` module whenever any Hydra app in this environment starts (it
scans them for plugins), so this one imports nothing heavy: Optuna, torch and digits' search code
are imported only once a sweep instantiates the sweeper."""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class OptunaSweeper(Sweeper):
    """`hydra/sweeper=optuna` (conf/hydra/sweeper/optuna.yaml): digits.search.sweeper's
    StudySweeper, built from the same settings when Hydra instantiates this."""

    def __init__(self, **settings: Any) -> None:
        from digits.search.sweeper import StudySweeper

        self.sweeper = StudySweeper(**settings)

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        return self.sweeper.sweep(arguments)
