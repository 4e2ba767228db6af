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

    def write(self, path: Path) -> None:
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
