"""Runs on disk: the one module that knows a run directory's layout (run_dir.py: RunDir, SweepDir,
ComparisonDir), run names (naming.py), what produced a run (manifest.py) and writing its files
safely (writing.py: atomic checkpoints, JSON)."""

from digits.runs.run_dir import RunDir, SweepDir, runs_in

__all__ = ["RunDir", "SweepDir", "runs_in"]
