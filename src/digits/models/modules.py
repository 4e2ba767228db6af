"""Which LightningModule trains and runs a network: the digit classifier for a network that
scores one digit, the number reader for one that reads strips of digits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from digits.models.base import DigitsModule
from digits.models.classifier import DigitClassifier
from digits.models.networks import reads_numbers
from digits.models.number_reader import NumberReader


def module_for(net: Mapping[str, Any]) -> type[DigitsModule]:
    """The LightningModule class for the network `net` names."""
    return NumberReader if reads_numbers(net) else DigitClassifier
