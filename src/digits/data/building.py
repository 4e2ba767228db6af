"""A data option built from its composed settings, digits' own or your own (`data._target_`):
your own class's settings checked by its annotated signature (digits' own have their schema), the
class held to being a digits data module, and a mistake said in one line. And the data module
class that saved settings name (a checkpoint's, a mix's sources), chosen by the user's trust,
never by the settings."""

from __future__ import annotations

from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

import digits.data
from digits.config.validate import check_by_signature
from digits.data.datamodule import DigitsDataModule
from digits.errors import DigitsError
from digits.trusted_code import DATA_GROUP, how_to_trust, trusted, trusted_class


def build_data(data: DictConfig, **overrides: Any) -> DigitsDataModule:
    """The data module `data` describes (its `_target_` with its settings, and `overrides`)."""
    check_by_signature(data, "data.")
    target = data["_target_"]
    try:
        datamodule = instantiate(data, **overrides)
    except InstantiationException as error:
        if not isinstance(error.__cause__, TypeError):  # a DigitsError of its own checks, or a bug
            raise
        raise DigitsError(f"data._target_={target}: cannot build it ({error.__cause__})") from error
    if not isinstance(datamodule, DigitsDataModule):
        raise DigitsError(
            f"data._target_={target}: not a digits data module; subclass "
            "digits.data.datamodule.HeldOutSplits (its read() gives the labelled images) "
            "or DigitsDataModule (docs/your-own-data.md)"
        )
    return datamodule


def option_name(data: DictConfig) -> str:
    """The data option's name, from its class (digits.data.UnlabelledDataModule: unlabelled)."""
    return str(data["_target_"]).rsplit(".", 1)[-1].removesuffix("DataModule").lower()


def data_class(name: str, where: str) -> type[DigitsDataModule]:
    """The data module class that saved settings name (a class of digits.data, by its name or as
    `digits.data.<Class>`, or module.Class of your own): digits' own, or yours when you trust it
    (digits.trusted_code); anything else is refused in one line naming `where`, never imported."""
    own = name.removeprefix("digits.data.")
    if own in digits.data.MODULES:
        return getattr(digits.data, own)
    if not trusted(name, DATA_GROUP):
        raise DigitsError(
            f"{where}: refused: {name!r} is not one of digits' data options "
            f"({', '.join(digits.data.MODULES)}) nor a data module you trust "
            f"({how_to_trust(DATA_GROUP)}); saved settings never choose the code that runs"
        )
    found = trusted_class(name, DATA_GROUP, where)
    if not issubclass(found, DigitsDataModule):
        raise DigitsError(f"{where}: {name} is not a digits data module")
    return found
