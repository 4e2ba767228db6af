"""What every command does around its work: check the command line before anything heavy starts
(digits.config.command_line), then hand over to Hydra."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig

from digits.config.command_line import check_command_line
from digits.errors import reports_user_errors


def launch(
    config_name: str,
    hydra_main: Callable[[], Any],
    check: Callable[[DictConfig], None] | None = None,
    prepare: Callable[[DictConfig], None] | None = None,
) -> None:
    """Console entry point: check the command line against the config (after `prepare`, which
    the Hydra main does first too), then hand over to Hydra."""
    reports_user_errors(check_command_line)(config_name, sys.argv[1:], check, prepare=prepare)
    hydra_main()


def silence_known_warnings() -> None:
    """Drop a deprecation warning Lightning raises against newer torch on every run."""
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
