"""What values a setting allows: ranges of numbers and choices of words, each able to say in words
what it allows. The schemas (digits.config.schema) and the constructors that take settings (as
`Annotated` types: the networks, the data module, the LightningModule, the server) declare them; the up-front check
of every command derives its messages from them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Range:
    """Numbers (or each number of a list) between bounds; `note` says why, where it is not obvious."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    but_not: float | None = None
    note: str = ""
    min_items: int = 0  # for a list: how many numbers it needs at least

    def admits(self, value: Any) -> bool:
        if isinstance(value, list | tuple):
            return len(value) >= self.min_items and all(self.admits(item) for item in value)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            return False
        return not (
            value == self.but_not
            or (self.ge is not None and value < self.ge)
            or (self.gt is not None and value <= self.gt)
            or (self.le is not None and value > self.le)
            or (self.lt is not None and value >= self.lt)
        )

    def describe(self) -> str:
        low = (
            f"[{self.ge:n}"
            if self.ge is not None
            else f"({self.gt:n}"
            if self.gt is not None
            else ""
        )
        high = (
            f"{self.le:n}]"
            if self.le is not None
            else f"{self.lt:n})"
            if self.lt is not None
            else ""
        )
        if low and high:
            text = f"in {low}, {high}"
        elif low:
            text = f"{'>=' if low[0] == '[' else '>'} {low[1:]}"
        else:
            text = f"{'<=' if high[-1] == ']' else '<'} {high[:-1]}"
        if self.but_not is not None:
            text += f", not {self.but_not:n}"
        if self.min_items:
            text += f", at least {self.min_items} of them"
        return f"{text} ({self.note})" if self.note else text


@dataclass(frozen=True)
class OneOf:
    """One of a few words."""

    options: tuple[str, ...]

    def admits(self, value: Any) -> bool:
        return (str(value).lower() if isinstance(value, bool) else str(value)) in self.options

    def describe(self) -> str:
        return f"one of {', '.join(self.options)}"


PROBABILITY = Range(ge=0, lt=1)
POSITIVE = Range(gt=0)
AT_LEAST_ONE = Range(ge=1)
NOT_NEGATIVE = Range(ge=0)
SEED = Range(ge=0, le=2**32 - 1, note="what numpy's generator takes")
