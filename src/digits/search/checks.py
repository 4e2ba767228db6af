"""A search's own checks, before its study exists: its counts, its space, sampler and pruner, and
every value of its space against the config it will be set in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from digits.config.command_line import compose_checked
from digits.config.validate import check_schema
from digits.errors import DigitsError
from digits.search.sweeper import parse


def check_search(
    hydra: DictConfig, task_overrides: list[str], recompose: Callable[[list[str]], DictConfig]
) -> None:
    """A search's counts, space, sampler and pruner, and every value of its space against the
    config it will be set in, before the study exists."""
    for key in ("n_trials", "n_jobs"):
        value = OmegaConf.select(hydra, f"sweeper.{key}")
        if value is not None and not (isinstance(value, int) and value >= 1):
            raise DigitsError(f"hydra.sweeper.{key}={value}: out of range, must be an integer >= 1")
    if hydra.runtime.choices.get("hydra/sweeper") == "optuna":
        model = hydra.runtime.choices.get("model")
        space, _ = parse(hydra.sweeper, task_overrides, model)
        check_dimensions(space, model, recompose)


def check_dimensions(
    space: Any, model: str | None, recompose: Callable[[list[str]], DictConfig]
) -> None:
    """Each value a dimension can take (its choices, an interval's ends) composes and passes the
    schema, with the other dimensions at their first values."""
    candidates = {key: space.candidates(key) for key in space.distributions}
    first = {key: values[0] for key, values in candidates.items()}
    for key, values in candidates.items():
        for value in values:
            combo = space.overrides(first | {key: value})
            try:
                check_schema(compose_checked(combo, recompose), combo)
            except DigitsError as error:
                raise DigitsError(
                    f"search dimension {key} (model={model}): {error}; change the search "
                    "space (hydra.sweeper.params, or model_params for this model)"
                ) from error
