"""Runs on disk: the one module that knows a run directory's layout (run_dir.py: RunDir, SweepDir,
ComparisonDir), holding a directory for one live run (holding.py) and claiming it before Hydra
writes there (claim.py), a run's settings and how runs differ (differences.py), run names
(naming.py), what produced a run (manifest.py), writing its files safely (writing.py), and comparing
runs (comparison.py, significance.py, per_image.py)."""

from digits.runs.run_dir import RunDir, SweepDir, runs_in

__all__ = ["RunDir", "SweepDir", "runs_in"]
