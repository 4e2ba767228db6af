"""Helpers shared by the entry points: one-line user errors, run metrics, the closing summary."""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from collections.abc import Callable, Mapping
from functools import wraps
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from digits.errors import DigitsError

log = logging.getLogger(__name__)


def reports_user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Entry-point decorator: a DigitsError becomes one line on stderr and exit status 2
    (HYDRA_FULL_ERROR=1 shows the full traceback instead, for developers)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DigitsError as error:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            if logging.getLogger().handlers:  # inside Hydra: also into the run's log
                log.error(str(error))
            print(f"error: {error}", file=sys.stderr)
            sys.exit(error.exit_code)

    return wrapper


def launch(
    config_name: str,
    hydra_main: Callable[[], Any],
    validate: Callable[[DictConfig], None] | None = None,
) -> None:
    """Console entry point: check the command line against the config, then hand over to Hydra."""
    from digits.config import check_command_line

    reports_user_errors(check_command_line)(config_name, sys.argv[1:], validate)
    hydra_main()


def route_lightning_logs() -> None:
    """Send Lightning's messages through the handlers Hydra set up, so they reach the run's log file
    (Lightning gives its loggers their own console handler when imported before Hydra configures),
    and drop a deprecation warning Lightning raises against newer torch on every run."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "torchmetrics"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


def scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Tensor-or-number metrics as plain floats."""
    return {
        name: value.item() if isinstance(value, torch.Tensor) else float(value)
        for name, value in metrics.items()
    }


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
