"""Code outside digits that a checkpoint may name: the user's own networks and data modules,
trusted by the user, never by the checkpoint. A checkpoint is a shared file and its settings are
data: a class it names is built when it is loaded, so a name nobody allowed (os.system,
builtins.eval) is refused, never imported."""

from __future__ import annotations

import os
from importlib.metadata import entry_points

from hydra.utils import get_class

from digits.errors import DigitsError

# Module prefixes the user trusts: DIGITS_TRUSTED_CODE=my_pkg,other_pkg.
TRUSTED_CODE_VARIABLE = "DIGITS_TRUSTED_CODE"
# An installed package's own declaration, in its pyproject.toml's entry points:
# [project.entry-points."digits.networks"] tiny = "my_pkg.nets:TinyNet"
NETWORKS_GROUP = "digits.networks"
DATA_GROUP = "digits.data"


def trusted(target: str, group: str) -> bool:
    """Whether the user trusts the class `target` (module.Class): declared by an installed
    package under the entry point `group`, or under a prefix listed in DIGITS_TRUSTED_CODE."""
    declared = {point.value.replace(":", ".") for point in entry_points(group=group)}
    prefixes = [
        p.strip() for p in os.environ.get(TRUSTED_CODE_VARIABLE, "").split(",") if p.strip()
    ]
    return target in declared or any(target.startswith(f"{prefix}.") for prefix in prefixes)


def how_to_trust(group: str) -> str:
    """The two ways to trust your own code, for an error line."""
    return f"{TRUSTED_CODE_VARIABLE}=<your package>, or a '{group}' entry point"


def trusted_class(target: str, group: str, where: str) -> type:
    """The class `target`, which the user trusts (`trusted`), imported; `where` names the setting
    or file for the error line when it cannot be imported."""
    try:
        return get_class(target)
    except Exception as error:  # Hydra wraps the import's own error as its cause
        reason = str(error.__cause__ or error).splitlines()[0]
        raise DigitsError(f"{where}: cannot import {target} ({reason})") from error
