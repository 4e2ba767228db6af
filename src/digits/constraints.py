"""What values a setting allows: ranges of numbers and choices of words, each able to say in words
what it allows. The config schema (digits.config.schema) and the networks' constructors
(digits.models.networks, as `Annotated` types) declare their settings with them; the up-front check
of every command derives its messages from them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


