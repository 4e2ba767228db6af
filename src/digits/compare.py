"""Compare any runs: `python -m digits.compare outputs/runs/A outputs/runs/B ...` (runs, multirun
folders, or quoted globs such as 'outputs/multiruns/*').

One table of the settings that differ between the runs and their final metrics, best validation
accuracy first; saved as markdown and CSV with a plot of test accuracy against training time.
A plain command line rather than Hydra's: its arguments are paths, not settings.
"""

from __future__ import annotations

import argparse
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
from digits.runs.comparison import METRICS, expand, rows_of
from digits.runs.run_dir import ComparisonDir


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
