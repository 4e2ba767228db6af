"""Compare any runs: `python -m digits.compare outputs/runs/A outputs/runs/B ...` (runs, multirun
folders, or quoted globs such as 'outputs/multiruns/*').

One table of the settings that differ between the runs and their final metrics, best validation
accuracy first; saved as markdown and CSV with a plot of test accuracy against training time.
A plain command line rather than Hydra's: its arguments are paths, not settings.
"""

from __future__ import annotations

import argparse
import glob
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from omegaconf import OmegaConf

from digits.config import config_dir
from digits.config.checks import check_writable
from digits.errors import DigitsError, reports_user_errors
from digits.presentation.figures import accuracy_vs_time_figure, save
from digits.presentation.tables import print_table, save_table
from digits.runs.run_dir import ComparisonDir, RunDir, SweepDir, differing_settings
from digits.search.summary import sort_key

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


def default_out() -> Path:
    """<log_dir>/comparisons/<time>, log_dir as conf/paths/default.yaml says."""
    log_dir = OmegaConf.load(Path(config_dir()) / "paths" / "default.yaml").log_dir
    return Path(log_dir) / "comparisons" / datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")


def compare(arguments: Sequence[str], out: Path | None = None) -> list[dict[str, Any]]:
    """Print and save the comparison of the runs named; return its rows, best first."""
    folder = ComparisonDir(out or default_out())
    if out is not None:
        if out.exists() and not out.is_dir():
            raise DigitsError(f"--out {out}: a file, not a folder; give a folder to save into")
        check_writable(out, "--out", "choose a writable folder")
    runs = expand(arguments)
    keys, rows = rows_of(runs)
    columns = ["run", "status", *keys, *METRICS]
    folder.path.mkdir(parents=True, exist_ok=True)
    save_table(folder.csv, folder.markdown, columns, rows)
    points = [(row["run"], row["train_time_s"], row["test_acc"]) for row in rows]
    save(accuracy_vs_time_figure([p for p in points if None not in p]), folder.plot)
    # The console lists each run's differing settings under the table: as columns they would
    # not fit a terminal.
    title = f"{len(runs)} runs, best val_acc_best first"
    console = print_table(title, ["run", "status", *METRICS], rows)
    console.print(f"settings that differ ({len(keys)}):" if keys else "no settings differ")
    for row in rows if keys else []:
        shown = " ".join(f"{key}={row[key]}" for key in keys if row[key] != "-")
        console.print(f"  [bold]{row['run']}[/bold]: {shown}", soft_wrap=True)
    console.print(f"saved: {folder.markdown}, {folder.csv}, {folder.plot}", soft_wrap=True)
    return rows


class OneLineParser(argparse.ArgumentParser):
    """argparse's mistakes as one line (argparse prints its usage too)."""

    def error(self, message: str) -> NoReturn:
        raise DigitsError(
            f"{message} (usage: {self.format_usage().strip().removeprefix('usage: ')})"
        )


@reports_user_errors
def main(argv: Sequence[str] | None = None) -> None:
    """`python -m digits.compare RUN [RUN ...] [--out DIR]`."""
    parser = OneLineParser(prog="python -m digits.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run directories, multirun folders or globs")
    parser.add_argument("--out", type=Path, help="where to save the table and the plot")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    compare(args.runs, args.out)


if __name__ == "__main__":
    main()
