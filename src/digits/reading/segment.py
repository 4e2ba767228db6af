"""Finding the digits in a photo of a number or a sheet: one box per digit, in reading order.

After the same cleanup as one digit (digits.reading.preprocess), the ink's connected pieces are
digits or parts of digits: pieces stacked over each other are one digit (a 5's flag, a broken 4),
a piece much wider than tall is several touching digits (cut where the ink is thinnest), specks are
dropped. Rows are read top to bottom, each left to right. Each digit comes out as MNIST would have
it (28x28, strokes at MNIST's width)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from digits.reading.preprocess import (
    MIN_CONTRAST,
    BlankImage,
    box_and_centre,
    clean_ink,
    normalise_stroke,
    otsu_threshold,
)

SPECK = 0.03  # pieces with less ink than this share of the largest piece's are specks
STACKED = 0.5  # pieces sharing this share of the narrower one's columns are one digit,
STACK_GAP = 0.3  # if no farther apart vertically than this share of the taller one's height
MNIST_ASPECT = 0.8  # MNIST's median digit is this wide for its height (99% are below 1.43)


@dataclass(frozen=True)
class Box:
    """A digit's box in the image's own pixels (bottom and right exclusive)."""

    top: int
    left: int
    bottom: int
    right: int


@dataclass(frozen=True)
class Digit:
    box: Box
    image: torch.Tensor  # 28x28, 0-1, white ink on black: what the network sees
    row: int  # 0 for the first line of the sheet


def _pieces(mask: np.ndarray) -> list[tuple[slice, slice, np.ndarray]]:
    """The ink's 8-connected pieces, specks dropped, as (rows, cols, own mask within the box)."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    if not count:
        return []
    areas = ndimage.sum_labels(mask, labels, index=np.arange(1, count + 1))
    pieces = []
    for label, (rows, cols) in enumerate(ndimage.find_objects(labels), start=1):
        if areas[label - 1] >= SPECK * areas.max():
            pieces.append((rows, cols, labels[rows, cols] == label))
    return pieces


def _stacked(a: tuple[slice, slice], b: tuple[slice, slice]) -> bool:
    """Whether two boxes are parts of one digit: sharing most columns, close above each other."""
    (a_rows, a_cols), (b_rows, b_cols) = a, b
    shared = min(a_cols.stop, b_cols.stop) - max(a_cols.start, b_cols.start)
    narrower = min(a_cols.stop - a_cols.start, b_cols.stop - b_cols.start)
    gap = max(a_rows.start, b_rows.start) - min(a_rows.stop, b_rows.stop)
    taller = max(a_rows.stop - a_rows.start, b_rows.stop - b_rows.start)
    return shared >= STACKED * narrower and gap <= STACK_GAP * taller


def _merge_stacked(pieces: list[tuple[slice, slice, np.ndarray]]) -> list:
    """Pieces stacked into one digit (see `_stacked`), as (rows, cols, mask)."""
    groups = [[p] for p in pieces]
    merged = True
    while merged:
        merged = False
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                if _stacked(_bounds(groups[i]), _bounds(groups[j])):
                    groups[i] += groups.pop(j)
                    merged = True
                    break
            if merged:
                break
    digits = []
    for group in groups:
        rows, cols = _bounds(group)
        mask = np.zeros((rows.stop - rows.start, cols.stop - cols.start), dtype=bool)
        for piece_rows, piece_cols, piece in group:
            mask[
                piece_rows.start - rows.start : piece_rows.stop - rows.start,
                piece_cols.start - cols.start : piece_cols.stop - cols.start,
            ] |= piece
        digits.append((rows, cols, mask))
    return digits


def _bounds(group: list[tuple[slice, slice, np.ndarray]]) -> tuple[slice, slice]:
    return (
        slice(min(p[0].start for p in group), max(p[0].stop for p in group)),
        slice(min(p[1].start for p in group), max(p[1].stop for p in group)),
    )


def _typical_width(digits: list) -> float | None:
    """The median width of the pieces no wider than tall (single digits, surely), if any."""
    widths = [mask.shape[1] for _, _, mask in digits if mask.shape[1] <= mask.shape[0]]
    return float(np.median(widths)) if widths else None


def _split_touching(rows: slice, cols: slice, mask: np.ndarray, typical: float | None) -> list:
    """A piece wider than tall and as wide as several digits (`typical` wide, else MNIST's median
    shape) cut into that many, each cut at the thinnest column near where it is expected."""
    height, width = mask.shape
    count = round(width / (typical or MNIST_ASPECT * height))
    if width <= height or count < 2:
        return [(rows, cols, mask)]
    ink_per_column = mask.sum(axis=0)
    cuts = [0]
    for k in range(1, count):
        expected, slack = k * width // count, width // (6 * count)
        window = ink_per_column[expected - slack : expected + slack + 1]
        cuts.append(expected - slack + int(np.argmin(window)))
    cuts.append(width)
    parts = []
    for start, stop in itertools.pairwise(cuts):
        part = mask[:, start:stop]
        kept = np.nonzero(part.any(axis=1))[0]
        if len(kept):
            top, bottom = kept[0], kept[-1] + 1
            parts.append(
                (
                    slice(rows.start + top, rows.start + bottom),
                    slice(cols.start + start, cols.start + stop),
                    part[top:bottom],
                )
            )
    return parts


def _reading_order(digits: list) -> list[tuple[int, tuple]]:
    """(row, digit) in reading order: a digit whose middle lies within a row's height joins it."""
    rows: list[list] = []
    for digit in sorted(digits, key=lambda d: (d[0].start + d[0].stop) / 2):
        middle = (digit[0].start + digit[0].stop) / 2
        if rows and rows[-1][0] <= middle <= rows[-1][1]:
            rows[-1][2].append(digit)
            rows[-1][1] = max(rows[-1][1], digit[0].stop)
        else:
            rows.append([digit[0].start, digit[0].stop, [digit]])
    return [
        (index, digit)
        for index, (_, _, row) in enumerate(rows)
        for digit in sorted(row, key=lambda d: d[1].start)
    ]


def digits_in(gray: np.ndarray, normalise_strokes: bool = True) -> list[Digit]:
    """The digits of a photo of a number or a sheet (grayscale 0-255), in reading order, strokes
    brought to MNIST's width unless `normalise_strokes` is false (the first recipe's way, for
    comparison). Raises BlankImage when there is no ink."""
    ink = clean_ink(gray)
    if float(ink.max()) < MIN_CONTRAST:
        raise BlankImage("no ink found (blank image)")
    mask = (ink >= max(otsu_threshold(ink), MIN_CONTRAST / 2)).numpy()
    digits = _merge_stacked(_pieces(mask))
    typical = _typical_width(digits)
    found = [part for digit in digits for part in _split_touching(*digit, typical)]
    scale = gray.shape[0] / ink.shape[0]  # the cleanup's working size back to the image's pixels
    result = []
    for row, (rows, cols, own) in _reading_order(found):
        digit = ink[rows, cols] * torch.from_numpy(own)
        digit = digit / digit.max()
        image = box_and_centre(normalise_stroke(digit) if normalise_strokes else digit)
        box = Box(*(round(v * scale) for v in (rows.start, cols.start, rows.stop, cols.stop)))
        result.append(Digit(box, image, row))
    return result
