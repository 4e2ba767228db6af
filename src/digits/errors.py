"""User mistakes: the one exception type for them, and the decorator that turns one into a line on
stderr and exit status 2 in every command (never a traceback)."""

from __future__ import annotations

import errno
import logging
import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

from hydra.errors import InstantiationException


class DigitsError(Exception):
    """A problem the user can fix (bad config value, missing file); shown without a traceback."""

    exit_code = 2


# conf/hydra/default.yaml sends this logger to the run's log file only: the console shows `error:`.
ERROR_LOG = logging.getLogger("digits.user_errors")


def user_error(error: BaseException) -> DigitsError | None:
    """The DigitsError behind `error`: itself, or the cause Hydra's instantiate wrapped; a path
    the file system refuses as too long is the user's to shorten, wherever it is first touched."""
    while error is not None:
        if isinstance(error, DigitsError):
            return error
        if isinstance(error, OSError) and error.errno == errno.ENAMETOOLONG:
            return DigitsError(
                f"{error.filename}: too long a name for the file system (at most 255 bytes a "
                "folder or file name); choose a shorter path"
            )
        error = error.__cause__ if isinstance(error, InstantiationException) else None
    return None


def reports_user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Entry-point decorator: a DigitsError becomes one line on stderr and exit status 2
    (HYDRA_FULL_ERROR=1 shows the full traceback instead, for developers)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (DigitsError, InstantiationException, OSError) as raised:
            error = user_error(raised)
            if error is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            if ERROR_LOG.handlers:
                ERROR_LOG.error(str(error))
            print(f"error: {error}", file=sys.stderr)
            sys.exit(error.exit_code)

    return wrapper
