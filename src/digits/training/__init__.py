"""Training, the feature behind `digits.train`: the run itself (fit.py: instantiate, fit, test,
metrics.json), what it checks before the run directory exists (checks.py), how it starts from the
command line (launch.py: resume=, holding the run directory, failed jobs), reproduce= (reproduce.py),
our Lightning callbacks (callbacks.py), what TensorBoard shows of a run (review.py), Lightning's
tuner instead of training (tuning.py) and torch's CUDA check on machines without the NVIDIA driver
(cuda_check.py)."""
