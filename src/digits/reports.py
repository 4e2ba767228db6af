"""What the entry points leave for people: JSON files and rich tables."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.utilities import rank_zero_only
from rich.console import Console
from rich.table import Table


@rank_zero_only
def write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


@rank_zero_only
def print_summary(title: str, metrics: Mapping[str, Any], run_dir: Path) -> None:
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
