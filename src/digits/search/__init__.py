"""Hyperparameter search on Optuna, and the summary that ends every multirun: the Hydra sweeper
(sweeper.py), the search space written in Hydra's override grammar (space.py), the study and which of
its trials count (study.py), a trial's side of its job (pruning.py), the search's own checks
(checks.py), and the summary: a grid sweep's jobs or a search's trials as one table (summary.py,
with trials.py for a study's rows, its best trial's command and Optuna's plots)."""
