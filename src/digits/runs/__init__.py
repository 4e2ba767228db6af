"""Runs on disk: the run directory's layout and the multirun summary."""

from digits.runs.run_dir import RunDir, SweepDir, runs_in

__all__ = ["RunDir", "SweepDir", "runs_in"]
