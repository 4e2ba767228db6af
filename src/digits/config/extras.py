"""The optional extras of digits (pyproject.toml's optional-dependencies) and the module each
brings: a command that needs one that is not installed says so in one line, with the command that
installs it."""

from __future__ import annotations

import importlib.util

from digits.errors import DigitsError

# extra: (the module it brings, the package that module comes from)
EXTRAS = {
    "mlflow": ("mlflow", "mlflow"),
    "slurm": ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher"),
    "search": ("psycopg", "psycopg"),
}
# Hydra launchers that come from an extra.
EXTRA_LAUNCHERS = {"slurm": "slurm", "submitit_slurm": "slurm", "submitit_local": "slurm"}


def require_extra(extra: str, setting: str, instead: str = "") -> None:
    """Raise DigitsError naming `setting` and the install command where `extra` is missing."""
    module, package = EXTRAS[extra]
    if importlib.util.find_spec(module) is None:
        hint = f" (or {instead})" if instead else ""
        raise DigitsError(
            f"{setting}: needs {package}, not installed here: pip install -e '.[{extra}]' in a "
            f"clone, pip install 'digits[{extra}]' otherwise{hint}"
        )
