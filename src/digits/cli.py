"""What every entry point does around its work: check the command line before anything heavy starts,
and turn a user's mistake into one line on stderr and exit status 2."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Callable
from functools import wraps
from typing import Any

from hydra.errors import InstantiationException
from omegaconf import DictConfig

from digits.errors import DigitsError

# conf/hydra/default.yaml sends this logger to the run's log file only: the console shows `error:`.
ERROR_LOG = logging.getLogger("digits.user_errors")


def user_error(error: BaseException) -> DigitsError | None:
    """The DigitsError behind `error`: itself, or the cause Hydra's instantiate wrapped."""
    while error is not None:
        if isinstance(error, DigitsError):
            return error
        error = error.__cause__ if isinstance(error, InstantiationException) else None
    return None


def reports_user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Entry-point decorator: a DigitsError becomes one line on stderr and exit status 2
    (HYDRA_FULL_ERROR=1 shows the full traceback instead, for developers)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (DigitsError, InstantiationException) as raised:
            error = user_error(raised)
            if error is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            if ERROR_LOG.handlers:
                ERROR_LOG.error(str(error))
            print(f"error: {error}", file=sys.stderr)
            sys.exit(error.exit_code)

    return wrapper


def launch(
    config_name: str,
    hydra_main: Callable[[], Any],
    check: Callable[[DictConfig], None] | None = None,
) -> None:
    """Console entry point: check the command line against the config, then hand over to Hydra."""
    from digits.config.checks import check_command_line

    reports_user_errors(check_command_line)(config_name, sys.argv[1:], check)
    hydra_main()


def silence_known_warnings() -> None:
    """Drop a deprecation warning Lightning raises against newer torch on every run."""
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
