"""Hydra instantiates sweepers only from classes defined in the `hydra_plugins` namespace: digits'
Optuna sweeper, defined here by name (the code is digits.search.sweeper's)."""

from digits.search.sweeper import StudySweeper


class OptunaSweeper(StudySweeper):
    """`hydra/sweeper=optuna` (conf/hydra/sweeper/optuna.yaml)."""
