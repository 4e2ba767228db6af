"""Runs side by side: the runs a command line names (run directories, multirun folders, globs), the
settings that differ between them, how each ended and its final metrics, best validation accuracy
first (digits.compare; a multirun's summary orders its rows the same way)."""

from __future__ import annotations

import glob
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from digits.errors import DigitsError
from digits.runs.run_dir import RunDir, SweepDir, differing_settings

# Column: metrics.json key (the sweep summary's column names).
METRICS = {
    "val_acc_best": "val/acc_best",
    "test_acc": "test/acc",
    "test_loss": "test/loss",
    "epochs": "epochs",
    "train_time_s": "train_time_s",
}


def expand(arguments: Sequence[str]) -> list[RunDir]:
    """The runs named: each run directory, every job of a multirun folder, globs expanded."""
    runs: list[RunDir] = []
    for argument in arguments:
        matches = sorted(glob.glob(argument)) if glob.has_magic(argument) else [argument]
        if not matches:
            raise DigitsError(f"{argument}: matches no folder")
        for match in map(Path, matches):
            if RunDir(match).is_run():
                runs.append(RunDir(match))
            elif match.is_dir() and SweepDir(match).jobs():
                runs.extend(SweepDir(match).jobs())
            elif not match.exists():
                raise DigitsError(f"{match}: no such folder")
            elif not glob.has_magic(argument):
                raise DigitsError(f"{match}: neither a run directory nor a multirun folder of runs")
    unique = list(dict.fromkeys(runs))
    if len(unique) < 2:
        raise DigitsError(
            f"{' '.join(arguments)}: found {len(unique)} run(s); compare needs two or more"
        )
    return unique


def label(run: RunDir) -> str:
    """A run's name: its folder, with the multirun's for a job (`<sweep>/3`)."""
    return f"{run.path.parent.name}/{run.path.name}" if run.path.name.isdigit() else run.path.name


def rows_of(runs: list[RunDir]) -> tuple[list[str], list[dict[str, Any]]]:
    settings = [run.settings() for run in runs]
    keys = differing_settings(settings)
    rows = []
    for run, setting in zip(runs, settings, strict=True):
        status, metrics = status_and_metrics(run)
        row = {"run": label(run), "status": status}
        row |= {key: setting.get(key, "-") for key in keys}
        row |= {column: metrics.get(key) for column, key in METRICS.items()}
        rows.append(row)
    return keys, sorted(rows, key=sort_key)


def status_and_metrics(run: RunDir) -> tuple[str, dict[str, Any]]:
    """How the run ended (its manifest) and its final metrics; a run whose metrics.json is missing
    or damaged says so instead of a status its numbers do not back."""
    status = run.manifest().get("status", "-")
    try:
        metrics = run.metrics()
    except DigitsError:
        return "damaged metrics.json", {}
    if metrics is None and status != "running":
        return "no metrics.json", {}
    return status, metrics or {}


def sort_key(row: dict[str, Any]) -> float:
    """Best validation accuracy first; rows without one (failed, no metrics) last."""
    value = row["val_acc_best"]
    return -value if isinstance(value, float) and not math.isnan(value) else math.inf
