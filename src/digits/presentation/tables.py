"""What the commands show people: rich tables on the console, and markdown/CSV tables in files."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.utilities import rank_zero_only
from rich.console import Console
from rich.table import Table


@rank_zero_only
def print_final_metrics(title: str, metrics: Mapping[str, Any], run_dir: Path) -> None:
    """A short rich table of the final metrics and where the run lives."""
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        if isinstance(value, float):
            table.add_row(name, f"{value:.4f}")
        elif isinstance(value, int):
            table.add_row(name, str(value))
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
    with csv_file.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell_text(row[c]) for c in columns) + " |" for row in rows]
    markdown_file.write_text("\n".join(lines) + "\n")


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
