"""Hyperparameter search on Optuna: the Hydra sweeper (sweeper.py), the search space written in
Hydra's override grammar (space.py), the study and which of its trials count (study.py), a trial's
side of its job (trial.py: pruning) and the study's report (report.py)."""
