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
    """A rich table on the console, fitted to its width (80 when it is not a terminal): headers
    break at their underscores, cells at their spaces, and the last columns that still would not
    fit are left out, named under the table (every column stays in the CSV and markdown files)."""
    console = Console()
    cells = [[cell_text(row[c]) for c in columns] for row in rows]
    headers = [column.replace("_", " ") for column in columns]
    widths = column_widths(headers, cells, console.width)
    shown = [index for index, width in enumerate(widths) if width]
    left_out = [column for index, column in enumerate(columns) if not widths[index]]
    # Widths set here, not by rich, which would fold a word sooner than leave a column out.
    table = Table(title=title, header_style="bold")
    for index in shown:
        table.add_column(headers[index], width=widths[index])
    for row in cells:
        table.add_row(*(row[index] for index in shown))
    console.print(table)
    if left_out:
        console.print(
            f"left out to fit {console.width} columns: {', '.join(left_out)} (in the saved tables)",
            soft_wrap=True,
        )
    return console


def column_widths(headers: list[str], cells: list[list[str]], width: int) -> list[int]:
    """Each column's width in a table `width` wide, 0 for one left out: every column shown is as
    wide as its longest word (3 more for padding and border); the last columns that do not fit
    so are left out (never the first); the room left widens the columns in order, each up to
    its longest line."""
    texts = [[header, *(row[i] for row in cells)] for i, header in enumerate(headers)]
    words = [max(len(word) for text in column for word in text.split() or [""]) for column in texts]
    lines = [max(len(text) for text in column) for column in texts]
    shown = len(headers)
    while shown > 1 and 1 + sum(w + 3 for w in words[:shown]) > width:
        shown -= 1
    room = width - 1 - sum(w + 3 for w in words[:shown])
    widths = []
    for word, line in zip(words[:shown], lines[:shown], strict=True):
        extra = max(0, min(line - word, room))
        widths.append(word + extra)
        room -= extra
    return widths + [0] * (len(headers) - shown)


# The test accuracy's interval in one console column (the saved tables keep its two ends).
INTERVAL_COLUMN = "test_acc_95%"


def with_interval_column(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with INTERVAL_COLUMN: `test_acc_low`-`test_acc_high` as one cell."""
    return [
        row | {INTERVAL_COLUMN: interval_text(row["test_acc_low"], row["test_acc_high"])}
        for row in rows
    ]


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
