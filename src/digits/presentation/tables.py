"""What the commands show people: rich tables on the console, and markdown/CSV tables in files."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.utilities import rank_zero_only
from rich.console import Console
from rich.table import Table

from digits.atomic import write_text


@rank_zero_only
def print_final_metrics(title: str, metrics: Mapping[str, Any], run_dir: Path) -> None:
    """A short rich table of the final metrics (an interval as low-high) and where the run lives."""
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        if isinstance(value, float):
            table.add_row(name, f"{value:.4f}")
        elif isinstance(value, int):
            table.add_row(name, str(value))
        elif isinstance(value, Mapping) and {"low", "high", "level"} <= value.keys():
            table.add_row(name, f"{value['low']:.4f}-{value['high']:.4f} ({value['level']:.0%})")
    console = Console()
    console.print(table)
    for name, value in metrics.items():
        if isinstance(value, str):
            console.print(f"{name.replace('_', ' ')}: {value}", soft_wrap=True)
    console.print(f"run directory: [bold]{run_dir}[/bold]", soft_wrap=True)


def save_table(
    csv_file: Path, markdown_file: Path, columns: list[str], rows: list[dict[str, Any]]
) -> None:
    """The rows, in the order given, as CSV and as a markdown table."""
    save_csv(csv_file, columns, rows)
    write_text(markdown_file, markdown_table(columns, rows), "the table")


def save_csv(csv_file: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    with csv_file.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def markdown_table(columns: list[str], rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell_text(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def cell_text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):  # accuracies to 4 places; an lr of 1e-07 as such
        return f"{value:.4f}" if 1e-3 <= abs(value) < 1e4 else f"{value:.4g}"
    return str(value)


def print_table(title: str, columns: list[str], rows: list[dict[str, Any]]) -> Console:
    table = Table(title=title, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(cell_text(row[c]) for c in columns))
    console = Console()
    console.print(table)
    return console


def interval_text(low: float | None, high: float | None) -> str:
    return "-" if low is None or high is None else f"{low:.4f}-{high:.4f}"


def spread_text(mean: float | None, sd: float | None, low: float | None, high: float | None) -> str:
    """A group's mean ± sd (interval), or for a group of one its value (and its interval, where
    it has one: its run's Wilson)."""
    if mean is None:
        return "-"
    if sd is None:
        return f"{mean:.4f}" if low is None else f"{mean:.4f} ({interval_text(low, high)})"
    return f"{mean:.4f} ± {sd:.4f} ({interval_text(low, high)})"


def print_groups(rows: list[dict[str, Any]]) -> None:
    """Groups of replicates (digits.runs.comparison.group_row): each accuracy's mean ± sd and the
    mean's interval in one cell, to fit a terminal."""
    accuracies = ("val_acc_best", "test_acc")
    shown = [
        {"configuration": row["configuration"], "n": row["n"]}
        | {key: spread_text(*(row[key + part] for part in ("", "_sd", "_low", "_high")))
           for key in accuracies}
        | {"cross-validated": "-" if row.get("cv_val_acc") is None else
           f"{row['cv_val_acc']:.4f} ({interval_text(row['cv_low'], row['cv_high'])})"}
        for row in rows
    ]  # fmt: skip
    folds = any(row.get("cv_val_acc") is not None for row in rows)
    print_table(
        "groups of replicates: mean ± sd (95% interval, Student's t; a group of one: its run's "
        "Wilson)"
        + ("; k-fold: final validation accuracy, Nadeau-Bengio interval" if folds else ""),
        ["configuration", "n", *accuracies, *(["cross-validated"] if folds else [])],
        shown,
    )
