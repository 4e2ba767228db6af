"""A data option built from its composed settings, digits' own or your own (`data._target_`):
your own class's settings checked by its annotated signature (digits' own have their schema), the
class held to being a digits data module, and a mistake said in one line."""

from __future__ import annotations

from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from digits.config.validate import check_by_signature
from digits.data.datamodule import DigitsDataModule
from digits.errors import DigitsError


def build_data(data: DictConfig, **overrides: Any) -> DigitsDataModule:
    """The data module `data` describes (its `_target_` with its settings, and `overrides`)."""
    check_by_signature(data, "data.")
    target = data._target_
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
