"""Compare any runs: `python -m digits.compare outputs/runs/A outputs/runs/B ...` (runs, multirun
folders, or quoted globs such as 'outputs/multiruns/*').

One table of the settings that differ between the runs and their final metrics (the test accuracy
with its 95% interval), best validation accuracy first; runs that differ only in seed or fold as
groups (n, mean, sd, interval); whether the best by validation beats each other run or group
(McNemar's exact test on the shared test images, Welch's t for seed groups, a corrected t fold by
fold for k-fold groups; Holm's correction; --all-pairs: every pair), in one sentence each.
Saved as markdown and CSV with a plot of test accuracy (error bars) against training time.
A plain command line rather than Hydra's: its arguments are paths, not settings.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

from omegaconf import OmegaConf

from digits.atomic import write_text
from digits.config import config_dir
from digits.config.machine import check_writable
from digits.errors import DigitsError, reports_user_errors
from digits.presentation.figures import accuracy_vs_time_figure, save
from digits.presentation.tables import (
    INTERVAL_COLUMN,
    markdown_table,
    print_groups,
    print_table,
    save_csv,
    with_interval_column,
)
from digits.runs.comparison import (
    GROUP_COLUMNS,
    INTERVAL,
    METRICS,
    best_first,
    expand,
    rows_of,
    units_to_test,
)
from digits.runs.run_dir import ComparisonDir
from digits.runs.significance import check_same_test_set, tests_between
from digits.runs.writing import write_json


def default_out() -> Path:
    """<log_dir>/comparisons/<time>, log_dir as conf/paths/default.yaml says."""
    log_dir = OmegaConf.load(Path(config_dir()) / "paths" / "default.yaml").log_dir
    return Path(log_dir) / "comparisons" / datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")


def compare(
    arguments: Sequence[str], out: Path | None = None, all_pairs: bool = False
) -> list[dict[str, Any]]:
    """Print and save the comparison of the runs named: each run, the groups of replicates, and
    whether the best by validation beats the others (with `all_pairs`: whether any beats any);
    return the runs' rows, best first."""
    folder = ComparisonDir(out or default_out())
    if out is not None:
        if out.exists() and not out.is_dir():
            raise DigitsError(f"--out {out}: a file, not a folder; give a folder to save into")
        check_writable(out, "--out", "choose a writable folder")
    runs = expand(arguments)
    check_same_test_set(runs)
    keys, rows = rows_of(runs)
    units, repeated = units_to_test(runs)
    groups, summaries = best_first(units)
    tests = tests_between(groups, all_pairs)
    if all(summary["n"] <= 1 for summary in summaries):  # runs alone: the table says it all
        summaries = []
    comparison = Comparison(keys, rows, summaries, tests, repeated)
    save_comparison(folder, comparison)
    show(folder, comparison)
    return rows


class Comparison(NamedTuple):
    keys: list[str]  # the settings that differ between the runs
    rows: list[dict[str, Any]]  # a run each, best first
    summaries: list[dict[str, Any]]  # a group of replicates each, best first (none: runs alone)
    tests: list[dict[str, Any]]  # the best against each other, with their verdicts
    repeated: list[str]  # runs counted once in their group, though named twice


def save_comparison(folder: ComparisonDir, comparison: Comparison) -> None:
    """comparison.md (runs, groups, tests), comparison.csv, groups.csv, tests.json and the plot:
    test accuracy with its interval against training time, per group where there are groups."""
    keys, rows, summaries, tests, repeated = comparison
    columns = ["run", "status", *keys, *METRICS, *INTERVAL]
    folder.path.mkdir(parents=True, exist_ok=True)
    save_csv(folder.csv, columns, rows)
    markdown = markdown_table(columns, rows)
    if summaries:
        save_csv(folder.groups_csv, GROUP_COLUMNS, summaries)
        markdown += "\n## Groups of replicates\n\n" + markdown_table(GROUP_COLUMNS, summaries)
        markdown += "".join(f"\n- {line}" for line in repeated) + ("\n" if repeated else "")
    markdown += "\n## Is A better than B?\n\n" + "".join(f"- {t['verdict']}\n" for t in tests)
    write_text(folder.markdown, markdown, "the comparison")
    write_json(folder.tests_json, {"tests": tests})
    points = [
        (row.get("run") or row["configuration"], row["train_time_s"], row["test_acc"],
         row["test_acc_low"], row["test_acc_high"], row.get("interval", "wilson"))
        for row in summaries or rows
    ]  # fmt: skip
    save(accuracy_vs_time_figure([p for p in points if None not in p[:3]]), folder.plot)


def show(folder: ComparisonDir, comparison: Comparison) -> None:
    # The console lists each run's differing settings under the table: as columns they would
    # not fit a terminal.
    keys, rows, summaries, tests, repeated = comparison
    title = f"{len(rows)} runs, best val_acc_best first"
    columns = ["run", "status", *METRICS, INTERVAL_COLUMN]
    console = print_table(title, columns, with_interval_column(rows))
    console.print(f"settings that differ ({len(keys)}):" if keys else "no settings differ")
    for row in rows if keys else []:
        shown = " ".join(f"{key}={row[key]}" for key in keys if row[key] != "-")
        console.print(f"  [bold]{row['run']}[/bold]: {shown}", soft_wrap=True)
    if summaries:
        print_groups(summaries)
    for line in repeated:
        console.print(line, soft_wrap=True)
    for test in tests:
        console.print(test["verdict"], soft_wrap=True)
    saved = [folder.markdown, folder.csv, *([folder.groups_csv] if summaries else []),
             folder.tests_json, folder.plot]  # fmt: skip
    console.print(f"saved: {', '.join(map(str, saved))}", soft_wrap=True)


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
    parser.add_argument(
        "--all-pairs",
        action="store_true",
        help="test every pair, not each against the best by validation (Holm over all of them)",
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    compare(args.runs, args.out, args.all_pairs)


if __name__ == "__main__":
    main()
