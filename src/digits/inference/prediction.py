"""What digits says about one image: its digit (or every digit of a number), confidences, the top
classes, or why it could not be read. `record()` is the JSON that `digits.predict output=json`
prints and `digits.serve` answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digits.constraints import Range
from digits.models.networks import NUM_CLASSES
from digits.reading.segment import Box

# One digit per image; every digit of a number or a sheet; either, per image.
MODES = ("digit", "number", "auto")
# How mode=number reads a row: find its digits and classify each; read it whole (model=crnn).
READERS = ("segment", "sequence")
# What `digits.predict` and `digits.serve` (config and each request) allow.
TOP_K = Range(ge=1, le=NUM_CLASSES)
CONFIDENCE = Range(ge=0, le=1)
READ_TIMEOUT = Range(gt=0, le=600, note="seconds reading one image as a number may take")


@dataclass
class Prediction:
    path: Path
    digit: int | None = None
    confidence: float | None = None
    top: list[tuple[int, float]] = field(default_factory=list)
    error: str | None = None
    blank: bool = False
    unsure: bool = False  # confidence below min_confidence: no digit, the top two instead
    # mode=number: every digit found, in reading order (each with its box and row), else None.
    digits: list[Prediction] | None = None
    box: Box | None = None
    row: int = 0

    @property
    def text(self) -> str:
        """The digits read, "?" where unsure, one line per row (mode=digit: the one digit)."""
        if self.blank or self.error:
            return ""
        rows: dict[int, str] = {}
        for d in self.digits if self.digits is not None else [self]:
            rows[d.row] = rows.get(d.row, "") + ("?" if d.digit is None else str(d.digit))
        return "\n".join(rows.values())

    def record(self) -> dict[str, Any]:
        """The prediction as `output=json` prints it (and `digits.serve` answers it)."""
        if self.digits is not None:
            return self._number_record()
        record = {
            "file": str(self.path),
            "digit": self.digit,
            "confidence": self.confidence,
            "top": [{"digit": d, "probability": v} for d, v in self.top],
        }
        if self.blank:
            record["blank"] = True
        if self.unsure:
            record["unsure"] = True
        if self.error:
            record["error"] = self.error
        return record

    def _number_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"file": str(self.path), "text": self.text, "digits": []}
        for d in self.digits or []:
            box = {"top": d.box.top, "left": d.box.left, "bottom": d.box.bottom,
                   "right": d.box.right} if d.box else None  # fmt: skip
            record["digits"].append(
                {"box": box, "row": d.row} | {k: v for k, v in d.record().items() if k != "file"}
            )
        if self.blank:
            record["blank"] = True
        if self.error:
            record["error"] = self.error
        return record


def none_or_list(mode: str) -> list[Prediction] | None:
    """A Prediction's `digits` before any is found: a number's are a list (mode=digit: none)."""
    return None if mode == "digit" else []
