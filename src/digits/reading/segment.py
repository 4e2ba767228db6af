"""Finding the digits in a photo of a number or a sheet: one box per digit, in reading order.

After the same cleanup as one digit (digits.reading.preprocess), the ink's connected pieces (a thin
pen's broken strokes reconnected first) are digits, parts of digits or several touching digits.
Specks are dropped, pieces stacked over each other are joined (a 5's flag, a broken 4) and rows
are read top to bottom. Within a row, pieces are cut where their ink is narrowest (where touching
digits meet) into parts; every run of neighbouring parts that could be one digit (not too wide,
holding at most one piece tall enough to be a digit by itself) is a candidate, and the row is read
as the sequence of candidates the classifier finds likeliest: the highest sum of their log top
probabilities, less a cost for each cut through more than one stroke (touching digits meet at one
stroke; the halves of a thin 0 or 8 can each look like a sure digit) and, in a row of several
pieces, for candidates wider than nearly any single digit (a classifier can be sure of two
touching digits as one), so a split or a merge wins only where it makes the digits more certain. Pieces too small to be digits join one or are left out. Without a classifier,
candidates are scored by how close their shape is to MNIST's typical digit. Each digit comes out as
MNIST would have it (28x28, strokes at MNIST's width)."""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import ndimage

from digits.errors import DigitsError
from digits.reading.preprocess import (
    MIN_CONTRAST,
    MNIST_STROKE,
    MNIST_STROKE_RANGE,
    STROKE_BOX,
    BlankImage,
    box_and_centre,
    clean_ink,
    normalise_stroke,
    otsu_threshold,
)
from digits.reading.strokes import dilate, stroke_width

SPECK = 0.03  # pieces with less ink than this share of the largest piece's are specks
STACKED = 0.5  # pieces sharing this share of the narrower one's columns are one digit,
STACK_GAP = 0.3  # if no farther apart vertically than this share of the taller one's height
STACK_OVERLAP = 0.3  # and sharing at most this share of the shorter one's rows
MNIST_ASPECT = 0.8  # MNIST's median digit is this wide for its height (99% are below 1.43)
MAX_ASPECT = 1.5  # no candidate digit is wider than this for its height,
WIDE = 1.1  # and, in a row of several pieces, one wider than this (95% of MNIST's digits are at
WIDE_COST = 3.0  # most 1.11 wide for their height) loses this much log probability per unit above
MAX_GAP = 0.35  # nor joins parts farther apart than this share of its height
MIN_PART = 0.2  # cuts are at least this share of the piece's height apart and from its sides
FRAGMENT = 0.7  # a piece less tall than this share of the image's tallest can join another
ALONE = 0.5  # and one less tall than this share is no digit alone: it joins one or is left out,
DROPPED = float(np.log(0.5))  # which scores as a digit read with probability 0.5 would
CUT_COST = 0.5  # a cut loses this much log probability per stroke it crosses beyond the first:
# touching digits meet at one stroke; a cut through two or three is through one digit (a 0, an 8)
SHAPE_BONUS = 0.4  # without a classifier, each digit scores this more (else fewer, wider ones win)
# The reading's work is bounded by these, whatever the image (a scribble of 400 strokes once made
# 10^5 candidates and ran for minutes). On the photo benchmark's numbers and sheets (make photos:
# 490 images) a row has at most 17 parts and 35 candidates, an image 16 pieces, and a candidate
# joins at most 7 parts.
MAX_PIECES = 200  # pieces of ink (specks left out) in one image: more is no number or sheet
MAX_RUN = 8  # parts one candidate digit may join
MAX_CANDIDATES = 1000  # candidate digits in one image, each preprocessed and classified

# Class probabilities (N, 10) of 28x28 digit images (N, 28, 28), 0-1, white ink on black.
Classifier = Callable[[torch.Tensor], torch.Tensor]


class TooMuchInk(DigitsError):
    """More ink pieces or candidate digits than a number or a sheet of numbers holds."""


class ReadingTimeout(DigitsError):
    """Reading an image took longer than its time limit."""


@dataclass(frozen=True)
class Deadline:
    """When reading must stop: `seconds` after it was made, or once `stop` is set (a server
    shutting down). Checked between steps of the reading, each bounded by the limits above."""

    seconds: float | None = None
    stop: threading.Event | None = None
    at: float = field(init=False)

    def __post_init__(self) -> None:
        at = time.monotonic() + self.seconds if self.seconds is not None else math.inf
        object.__setattr__(self, "at", at)

    def remaining(self) -> float:
        """Seconds left (0 once stopped; inf without a limit)."""
        if self.stop is not None and self.stop.is_set():
            return 0.0
        return max(0.0, self.at - time.monotonic())

    def check(self) -> None:
        """Raise ReadingTimeout once past the deadline or stopped."""
        if self.stop is not None and self.stop.is_set():
            raise ReadingTimeout("reading stopped: the server is shutting down")
        if time.monotonic() > self.at:
            raise ReadingTimeout(
                f"reading took longer than its limit ({self.seconds:g} s): too much ink to read "
                "as a number; crop the image to the number, or read it as one digit (mode=digit)"
            )


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


@dataclass(frozen=True)
class Ink:
    """Some of the ink: its box in the cleaned image and which pixels of the box are its own."""

    rows: slice
    cols: slice
    mask: np.ndarray

    @property
    def height(self) -> int:
        return self.rows.stop - self.rows.start

    @property
    def width(self) -> int:
        return self.cols.stop - self.cols.start

    @property
    def inked_rows(self) -> int:
        """How many of its rows hold ink (two specks far apart are tall but hold few)."""
        return int(self.mask.any(axis=1).sum())

    @staticmethod
    def union(parts: list[Ink]) -> Ink:
        rows = slice(min(p.rows.start for p in parts), max(p.rows.stop for p in parts))
        cols = slice(min(p.cols.start for p in parts), max(p.cols.stop for p in parts))
        mask = np.zeros((rows.stop - rows.start, cols.stop - cols.start), dtype=bool)
        for p in parts:
            mask[
                p.rows.start - rows.start : p.rows.stop - rows.start,
                p.cols.start - cols.start : p.cols.stop - cols.start,
            ] |= p.mask
        return Ink(rows, cols, mask)

    def columns(self, start: int, stop: int) -> Ink:
        """The ink in columns start:stop of the box (relative), its rows trimmed to the ink."""
        part = self.mask[:, start:stop]
        inked = np.nonzero(part.any(axis=1))[0]
        top, bottom = inked[0], inked[-1] + 1
        rows = slice(self.rows.start + top, self.rows.start + bottom)
        return Ink(rows, slice(self.cols.start + start, self.cols.start + stop), part[top:bottom])


def _reconnected(mask: np.ndarray) -> np.ndarray:
    """The ink thickened to MNIST's stroke width (for the tallest piece's size) where it is
    thinner, so that a thin pen's broken strokes join up again (only to find the pieces)."""
    labels = ndimage.label(mask, structure=np.ones((3, 3)))[0]
    tallest = max((rows.stop - rows.start for rows, _ in ndimage.find_objects(labels)), default=0)
    width = stroke_width(torch.from_numpy(mask)) * STROKE_BOX / max(tallest, 1)
    if width >= MNIST_STROKE_RANGE[0]:
        return mask
    radius = round((MNIST_STROKE - width) / 2 * tallest / STROKE_BOX)
    return dilate(torch.from_numpy(mask).float(), radius).numpy() > 0


def _pieces(mask: np.ndarray) -> list[Ink]:
    """The ink's pieces (8-connected once thin strokes are reconnected), specks dropped."""
    labels, count = ndimage.label(_reconnected(mask), structure=np.ones((3, 3)))
    labels *= mask  # each piece is its own ink only
    if not count:
        return []
    areas = ndimage.sum_labels(mask, labels, index=np.arange(1, count + 1))
    return [
        Ink(rows, cols, labels[rows, cols] == label)
        for label, (rows, cols) in enumerate(ndimage.find_objects(labels), start=1)
        if areas[label - 1] >= SPECK * areas.max()
    ]


def _stacked(a: Ink, b: Ink) -> bool:
    """Whether two pieces are parts of one digit: sharing most columns, one above the other
    (overlapping little in rows) and close."""
    shared = min(a.cols.stop, b.cols.stop) - max(a.cols.start, b.cols.start)
    gap = max(a.rows.start, b.rows.start) - min(a.rows.stop, b.rows.stop)
    lower = min(a.height, b.height)
    return (
        shared >= STACKED * min(a.width, b.width)
        and -gap <= STACK_OVERLAP * lower
        and gap <= STACK_GAP * max(a.height, b.height)
    )


def _merge_stacked(pieces: list[Ink], deadline: Deadline) -> list[Ink]:
    """Pieces stacked into one digit (see `_stacked`) joined."""
    pieces = list(pieces)
    merged = True
    while merged:
        deadline.check()
        merged = False
        for i in range(len(pieces)):
            partner = next(
                (j for j in range(i + 1, len(pieces)) if _stacked(pieces[i], pieces[j])), None
            )
            if partner is not None:
                pieces[i] = Ink.union([pieces[i], pieces.pop(partner)])
                merged = True
                break
    return pieces


def _shared_rows(a: slice, b: slice) -> int:
    return min(a.stop, b.stop) - max(a.start, b.start)


def _rows(pieces: list[Ink]) -> list[list[Ink]]:
    """Pieces in rows, top to bottom, each left to right. Tallest first, a piece joins the row
    whose band (the rows its pieces span) it overlaps most, and starts one only where it overlaps
    none: a digit written higher or lower than its neighbours, or a broken-off part above a digit,
    stays in their row."""
    rows: list[tuple[slice, list[Ink]]] = []
    for piece in sorted(pieces, key=lambda p: -p.height):
        best = max(rows, key=lambda row: _shared_rows(row[0], piece.rows), default=None)
        if best and _shared_rows(best[0], piece.rows) > 0:
            rows.remove(best)
            span = slice(min(best[0].start, piece.rows.start), max(best[0].stop, piece.rows.stop))
            rows.append((span, [*best[1], piece]))
        else:
            rows.append((piece.rows, [piece]))
    rows.sort(key=lambda row: row[0].start)
    return [sorted(row, key=lambda p: p.cols.start) for _, row in rows]


def _parts(piece: Ink) -> list[Ink]:
    """The piece cut where its ink is narrowest: at local minima of the ink per column, the
    lowest first, at least MIN_PART of its height from each other and from its sides."""
    step = max(2, round(MIN_PART * piece.height))
    ink = np.convolve(piece.mask.sum(axis=0), np.ones(3) / 3, mode="same")
    minima = [
        x
        for x in range(step, piece.width - step + 1)
        if ink[x] == ink[x - step // 2 : x + step // 2 + 1].min()
    ]
    cuts: list[int] = []
    for x in sorted(minima, key=lambda x: ink[x]):
        if all(abs(x - cut) >= step for cut in cuts):
            cuts.append(x)
    edges = [0, *sorted(cuts), piece.width]
    return [piece.columns(a, b) for a, b in itertools.pairwise(edges)]


def _candidates(
    owned: list[tuple[Ink, Ink]], tallest: int
) -> tuple[list[tuple[int, int, Ink]], set[int]]:
    """(first, end, ink) for each run parts[first:end] of a row's parts (its pieces cut, see
    `_parts`; `owned` pairs each part with its piece) that could be one digit: no wider than
    MAX_ASPECT of its height, no gap wider than MAX_GAP of it, holding at most one piece that is
    not a fragment (see FRAGMENT), at most MAX_RUN parts, and ink in enough of its rows to be a digit (see ALONE;
    `tallest`: the image's tallest piece's height; two specks far apart are no digit). And the
    parts with too few such rows, which may be left out (specks, or a broken-off end no digit
    takes)."""
    parts, owners = [part for part, _ in owned], [piece for _, piece in owned]
    short = {i for i, part in enumerate(parts) if part.inked_rows < ALONE * tallest}
    candidates = []
    for first in range(len(parts)):
        if first not in short:
            candidates.append((first, first + 1, parts[first]))
        for end in range(first + 2, min(len(parts), first + MAX_RUN) + 1):
            joined = Ink.union(parts[first:end])
            gap = parts[end - 1].cols.start - max(p.cols.stop for p in parts[first : end - 1])
            digit_sized = {id(o) for o in owners[first:end] if o.height >= FRAGMENT * tallest}
            if (
                joined.width > MAX_ASPECT * joined.height
                or gap > MAX_GAP * joined.height
                or len(digit_sized) > 1
            ):
                break
            if joined.inked_rows >= ALONE * tallest:
                candidates.append((first, end, joined))
    return candidates, short


def _strokes_crossed(piece: Ink, x: int) -> int:
    """How many strokes a cut at column x of the piece crosses: the runs of ink in that column,
    the fewest of it and its neighbours' (a cut may pass a stroke's frayed edge)."""
    columns = piece.mask[:, max(0, x - 1) : x + 2].astype(np.int8)
    return int((np.diff(columns, axis=0, prepend=0) == 1).sum(axis=0).min())


def _cut_costs(owned: list[tuple[Ink, Ink]]) -> torch.Tensor:
    """For each part (`owned` pairs it with its piece), what starting a digit there costs: CUT_COST
    per stroke beyond one that the cut on its left crosses (nothing where a piece begins)."""
    costs = [
        CUT_COST * max(0, _strokes_crossed(piece, part.cols.start - piece.cols.start) - 1)
        if i and owned[i - 1][1] is piece
        else 0.0
        for i, (part, piece) in enumerate(owned)
    ]
    return torch.tensor(costs, dtype=torch.float64)


def _scores(images: torch.Tensor, classify: Classifier) -> torch.Tensor:
    """How likely each candidate is a digit: the log probability of its likeliest class."""
    return classify(images).double().max(dim=1).values.clamp_min(1e-12).log()


def _too_wide(candidates: list[Ink]) -> torch.Tensor:
    """WIDE_COST per unit of aspect above WIDE: a classifier may be sure of two touching digits
    as one (26 as an 8)."""
    aspects = torch.tensor([c.width / c.height for c in candidates], dtype=torch.float64)
    return WIDE_COST * (aspects - WIDE).clamp_min(0)


def _shape_scores(candidates: list[Ink]) -> torch.Tensor:
    """Without a classifier: how close each candidate's aspect is to MNIST's median (log ratio)."""
    aspects = torch.tensor([c.width / c.height for c in candidates], dtype=torch.float64)
    return SHAPE_BONUS - (aspects / MNIST_ASPECT).log().abs()


def _best_reading(
    count: int, spans: list[tuple[int, int]], scores: torch.Tensor, droppable: set[int]
) -> list[int]:
    """The indices of the candidates covering parts 0..count-1 once, in order, with the highest
    total score, where leaving out a `droppable` part scores DROPPED (dynamic programming over
    where each digit ends)."""
    ending: dict[int, list[int]] = {}
    for index, (_, end) in enumerate(spans):
        ending.setdefault(end, []).append(index)
    best = [0.0] + [-np.inf] * count
    choice = [-1] * (count + 1)  # the candidate ending there; -1: the part before is left out
    for end in range(1, count + 1):
        if end - 1 in droppable:
            best[end] = best[end - 1] + DROPPED
        for index in ending.get(end, []):
            total = best[spans[index][0]] + float(scores[index])
            if total > best[end]:
                best[end], choice[end] = total, index
    chosen, end = [], count
    while end:
        if choice[end] < 0:
            end -= 1
        else:
            chosen.append(choice[end])
            end = spans[choice[end]][0]
    return chosen[::-1]


def digits_in(
    gray: np.ndarray,
    normalise_strokes: bool = True,
    classify: Classifier | None = None,
    deadline: Deadline | None = None,
) -> list[Digit]:
    """The digits of a photo of a number or a sheet (grayscale 0-255), in reading order, strokes
    brought to MNIST's width unless `normalise_strokes` is false (the first recipe's way, for
    comparison). Where to cut touching digits and whether side-by-side pieces are one digit is
    decided by `classify` when given (see the module's docstring). Raises BlankImage when there
    is no ink, TooMuchInk past the limits above, ReadingTimeout past the `deadline`."""
    deadline = deadline or Deadline()
    ink, pieces, scale = _found_pieces(gray, deadline)

    def image(candidate: Ink) -> torch.Tensor:
        digit = ink[candidate.rows, candidate.cols] * torch.from_numpy(candidate.mask)
        digit = digit / digit.max()
        return box_and_centre(normalise_stroke(digit) if normalise_strokes else digit)

    found: list[Digit] = []
    tallest = max(piece.height for piece in pieces)
    rows = [(in_row, [(part, p) for p in in_row for part in _parts(p)]) for in_row in _rows(pieces)]
    candidates = [_candidates(parts, tallest) for _, parts in rows]
    if sum(len(made) for made, _ in candidates) > MAX_CANDIDATES:
        raise TooMuchInk(
            f"too much ink to read as a number: over {MAX_CANDIDATES} possible digits; crop "
            "the image to the number, or read it as one digit (mode=digit)"
        )
    for (in_row, parts), row_candidates in zip(rows, candidates, strict=True):
        read = _read_row(in_row, tallest, parts, row_candidates, image, classify, deadline)
        row = len({d.row for d in found})
        for c, digit in read:
            box = (c.rows.start, c.cols.start, c.rows.stop, c.cols.stop)
            found.append(Digit(Box(*(round(v * scale) for v in box)), digit, row))
    return found


def _found_pieces(gray: np.ndarray, deadline: Deadline) -> tuple[torch.Tensor, list[Ink], float]:
    """The cleaned ink of a photo (0-255, at the cleanup's working size), its pieces (stacked ones
    joined) and the factor from the working size back to the image's pixels. Raises BlankImage
    or TooMuchInk."""
    ink = clean_ink(gray)
    if float(ink.max()) < MIN_CONTRAST:
        raise BlankImage("no ink found (blank image)")
    mask = (ink >= max(otsu_threshold(ink), MIN_CONTRAST / 2)).numpy()
    pieces = _pieces(mask)
    if len(pieces) > MAX_PIECES:
        raise TooMuchInk(
            f"too much ink to read as a number: {len(pieces)} separate pieces (at most "
            f"{MAX_PIECES}); crop the image to the number, or read it as one digit (mode=digit)"
        )
    return ink, _merge_stacked(pieces, deadline), gray.shape[0] / ink.shape[0]


@dataclass(frozen=True)
class Row:
    """A row of a photo's ink: its box in the image's pixels and the ink in its box but other
    rows' pieces, 0-1, white on black, at the cleanup's working size."""

    box: Box
    ink: torch.Tensor


def rows_in(gray: np.ndarray, deadline: Deadline | None = None) -> list[Row]:
    """The rows of a photo of a number or a sheet (grayscale 0-255), top to bottom, for a reader
    of whole rows (digits.models.number_reader): found as `digits_in` finds them, nothing cut.
    Raises BlankImage, TooMuchInk, ReadingTimeout."""
    deadline = deadline or Deadline()
    ink, pieces, scale = _found_pieces(gray, deadline)
    in_rows = _rows(pieces)
    owner = torch.zeros(ink.shape, dtype=torch.int64)  # which row's piece each pixel is (0: none)
    for number, in_row in enumerate(in_rows, start=1):
        for piece in in_row:
            owner[piece.rows, piece.cols][torch.from_numpy(piece.mask)] = number
    rows = []
    for number, in_row in enumerate(in_rows, start=1):
        deadline.check()
        row = Ink.union(in_row)
        # All the ink in the row's box, the faint strokes and specks that finding digits leaves
        # out included (a reader of whole rows learned from every stroke), but other rows' pieces;
        # what is fainter than half the ink's contrast is paper.
        own = ink[row.rows, row.cols].clone()
        others = owner[row.rows, row.cols]
        own[(others != 0) & (others != number)] = 0
        own = (own - MIN_CONTRAST / 2).clamp(min=0)
        box = (row.rows.start, row.cols.start, row.rows.stop, row.cols.stop)
        rows.append(Row(Box(*(round(v * scale) for v in box)), own / own.max().clamp(min=1e-6)))
    return rows


def _read_row(
    pieces: list[Ink],
    tallest: int,
    parts: list[tuple[Ink, Ink]],
    found: tuple[list[tuple[int, int, Ink]], set[int]],
    image: Callable[[Ink], torch.Tensor],
    classify: Classifier | None,
    deadline: Deadline,
) -> list[tuple[Ink, torch.Tensor]]:
    """A row's digits, left to right, each as its ink and the 28x28 `image` made of it (`parts`:
    the row's pieces cut, each with its piece; `found`: their candidates, see `_candidates`)."""
    candidates, droppable = found
    if not candidates:
        return []  # nothing but specks
    inks = [c for _, _, c in candidates]
    images = torch.stack([_checked(deadline, image, c) for c in inks])
    if classify is None:
        scores = _shape_scores(inks)
    else:
        scores = _scores(images, classify)
        if sum(p.height >= FRAGMENT * tallest for p in pieces) > 1:  # else more likely one wide
            scores = scores - _too_wide(inks)  # digit than two touching ones
    spans = [(first, end) for first, end, _ in candidates]
    scores = scores - _cut_costs(parts)[[first for first, _ in spans]]
    return [(inks[i], images[i]) for i in _best_reading(len(parts), spans, scores, droppable)]


def _checked(deadline: Deadline, image: Callable[[Ink], torch.Tensor], c: Ink) -> torch.Tensor:
    deadline.check()
    return image(c)
