"""The search space, written in Hydra's override grammar, as Optuna distributions.

    optimizer.lr: tag(log, interval(0.0001, 0.01))   a float, sampled on a log scale
    model.hidden: choice(64, 128, 256)               one of these values (or `64,128,256`)
    trainer.max_epochs: range(1, 6)                  an integer in [1, 6), step 1 (or range(1, 6, 2))
    model.width: tag(int, interval(8, 64))           an integer in [8, 64]
    data.batch_size: 128                             fixed for every trial

The keys come from `hydra.sweeper.params` and from the command line (`-m optimizer.lr=...` adds or
replaces a dimension; a plain override is passed to every trial). Hydra's grammar and parser are
reused so the YAML reads as it did with hydra-optuna-sweeper; only the mapping to Optuna is ours.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.errors import HydraException
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from digits.errors import DigitsError

ALLOWED = "choice(...), interval(...), range(...), tag(log|int, interval(...)) or a fixed value"


@dataclass
class SearchSpace:
    """What each trial gets: the sampled dimensions (by key) and the overrides every trial shares."""

    distributions: dict[str, BaseDistribution] = field(default_factory=dict)
    fixed: dict[str, str] = field(default_factory=dict)
    # How each dimension is written back as an override: `+key` for keys the config lacks.
    key_elements: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, params: Mapping[str, Any] | None, arguments: Sequence[str]) -> SearchSpace:
        """`hydra.sweeper.params` first, then the command line's task overrides (which win)."""
        lines = [f"{key}={value}" for key, value in (params or {}).items()]
        space = cls()
        for line, override in _parsed([*lines, *arguments]):
            space.add(line, override)
        return space

    def add(self, line: str, override: Override) -> None:
        key = override.key_or_group
        self.distributions.pop(key, None)
        self.fixed.pop(key, None)
        if not override.is_sweep_override():
            self.fixed[key] = line
            return
        self.distributions[key] = distribution(line, override)
        self.key_elements[key] = override.get_key_element()

    def candidates(self, key: str) -> list[Any]:
        """The values worth checking a dimension with: its choices, or its range's ends."""
        values = self.distributions[key]
        if isinstance(values, CategoricalDistribution):
            return list(values.choices)
        return [values.low, values.high]

    def overrides(self, params: Mapping[str, Any]) -> list[str]:
        """The trial's overrides: the shared ones, then its sampled values."""
        sampled = [
            f"{self.key_elements[key]}={_written(params[key])}" for key in self.distributions
        ]
        return [*self.fixed.values(), *sampled]


def distribution(line: str, override: Override) -> BaseDistribution:
    """One sweep override as an Optuna distribution, or DigitsError naming it."""
    value = override.value()
    tags = getattr(value, "tags", set())
    if isinstance(value, ChoiceSweep) and not tags:
        return CategoricalDistribution(value.list)
    if isinstance(value, RangeSweep) and not tags:
        return _range(line, value)
    if isinstance(value, IntervalSweep) and tags <= {"log", "int"}:
        if value.start >= value.end:
            raise DigitsError(f"{line}: the interval is empty (its start must be below its end)")
        if value.start <= 0 and "log" in tags:
            raise DigitsError(f"{line}: a log scale needs a start above 0")
        if "int" in tags:
            return IntDistribution(int(value.start), int(value.end), log="log" in tags)
        return FloatDistribution(value.start, value.end, log="log" in tags)
    raise DigitsError(f"{line}: not a search dimension; use {ALLOWED}")


def _range(line: str, value: RangeSweep) -> BaseDistribution:
    values = [value.start, value.stop, value.step]
    if not all(isinstance(v, int) for v in values) or value.step <= 0:
        raise DigitsError(f"{line}: range() needs integers and a positive step")
    last = value.stop - 1 - (value.stop - 1 - value.start) % value.step
    if last < value.start:
        raise DigitsError(f"{line}: the range is empty")
    return IntDistribution(value.start, last, step=value.step)


def _parsed(lines: Sequence[str]) -> list[tuple[str, Override]]:
    parser = OverridesParser.create()
    parsed = []
    for line in lines:
        try:
            (override,) = parser.parse_overrides([line])
        except HydraException as error:
            raise DigitsError(f"{line}: {ALLOWED} ({' '.join(str(error).split())})") from error
        parsed.append((line, override))
    return parsed


def _written(value: Any) -> str:
    """A sampled value as Hydra reads it back unchanged (repr keeps every digit of a float)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str) and not re.fullmatch(r"[\w./:-]+", value):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return str(value)
