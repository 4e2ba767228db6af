"""Training, the feature behind `digits.train`: its settings' schemas (settings.py), the run itself
(fit.py: instantiate, fit, test, metrics.json), what it checks before the run directory exists
(checks.py), its command line before Hydra reads it (argv.py: resume=, reproduce=, the run
directory, failed jobs), a reproduction beside its original (reproduce.py),
our Lightning callbacks (callbacks.py), what TensorBoard shows of a run (review.py), Lightning's
tuner instead of training (tuning.py) and torch's CUDA check on machines without the NVIDIA driver
(cuda_check.py)."""
