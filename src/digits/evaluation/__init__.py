"""Scoring trained models on MNIST's test set or a run's validation split: the model's predictions
through Lightning's test or validation loop, scores, calibration and committees (scoring.py), and
the report written into the run: metrics.json and figures (report.py)."""
