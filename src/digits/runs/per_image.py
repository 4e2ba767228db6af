"""A run's test predictions image by image (test_predictions.csv in its directory): for each of the
test images, in the test set's order, its label, the class predicted and the calibrated confidence.
Written when the run tests, so that any two runs can later be compared on the same images
(digits.compare: McNemar's test) without running either again."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from digits.atomic import write_atomically
from digits.errors import DigitsError
from digits.uncertainty import accuracy_interval

HEADER = "image,label,predicted,confidence"
# A number reader's: each strip's number and what was read, as text (leading zeros kept).
NUMBER_HEADER = "image,number,read,confidence"


class PerImageResults(NamedTuple):
    labels: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray

    @property
    def correct(self) -> np.ndarray:
        return self.predicted == self.labels

    def summary(self, split: str = "test") -> dict[str, Any]:
        """How many images, how many right, and the accuracy's 95% interval (metrics.json)."""
        images, correct = len(self.labels), int(self.correct.sum())
        return {
            f"{split}/images": images,
            f"{split}/correct": correct,
            f"{split}/acc_interval": accuracy_interval(correct, images),
        }

    @property
    def numbers(self) -> bool:
        """Whether these are a number reader's results (text), not a classifier's (classes)."""
        return self.labels.dtype == object

    def write(self, path: Path) -> None:
        if self.numbers:
            rows = zip(self.labels, self.predicted, self.confidence, strict=True)
            lines = [f"{i},{a},{b},{c:.6f}" for i, (a, b, c) in enumerate(rows)]
            data = "\n".join([NUMBER_HEADER, *lines]) + "\n"
            write_atomically(path, data.encode(), what="the per-image test results")
            return
        table = np.column_stack(
            [np.arange(len(self.labels)), self.labels, self.predicted, self.confidence]
        )
        text = io.StringIO()
        np.savetxt(text, table, fmt=["%d", "%d", "%d", "%.6f"], delimiter=",", header=HEADER,
                   comments="")  # fmt: skip
        write_atomically(path, text.getvalue().encode(), what="the per-image test results")

    @classmethod
    def read(cls, path: Path) -> PerImageResults:
        """The results a run wrote, or a one-line DigitsError naming the file when damaged."""
        try:
            header = path.open().readline().strip()
            if header == NUMBER_HEADER:
                return cls._read_numbers(path)
            table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
        except (OSError, ValueError, UnicodeDecodeError) as error:
            raise DigitsError(f"{path}: damaged, not readable ({error})") from error
        if (
            header != HEADER
            or table.shape[1] != 4
            or not np.array_equal(table[:, 0], np.arange(len(table)))
        ):
            raise DigitsError(f"{path}: damaged: expected the columns {HEADER}, one row per image")
        return cls(table[:, 1].astype(int), table[:, 2].astype(int), table[:, 3])

    @classmethod
    def _read_numbers(cls, path: Path) -> PerImageResults:
        rows = [line.split(",") for line in path.read_text().splitlines()[1:]]
        if any(len(row) != 4 or row[0] != str(i) for i, row in enumerate(rows)):
            raise DigitsError(
                f"{path}: damaged: expected the columns {NUMBER_HEADER}, one row per image"
            )
        try:
            confidence = np.array([float(row[3]) for row in rows])
        except ValueError as error:
            raise DigitsError(f"{path}: damaged, not readable ({error})") from error
        texts = [np.array([row[column] for row in rows], dtype=object) for column in (1, 2)]
        return cls(*texts, confidence)
