"""tools/photo_benchmark.py's sets are what they claim: thin pens are thin and small, postal scans
16x16 and bold, jittered numbers shifted by up to half a digit's height."""

from __future__ import annotations

import itertools

import numpy as np
import torch
from photo_benchmark import drawn_digit, number_strip, postal_scan, thin_pen_scan
from PIL import Image

from digits.reading.strokes import stroke_width


def mnist_like(digit: int, rng: np.random.Generator) -> np.ndarray:
    """A drawn digit in MNIST's frame: 28x28, the ink about 20 px tall, 0-1."""
    ink = Image.fromarray((drawn_digit(digit, rng) * 255).astype(np.uint8)).resize((20, 20))
    frame = np.zeros((28, 28), np.float32)
    frame[4:24, 4:24] = np.asarray(ink, np.float32) / 255
    return frame


def ink_of(image: Image.Image) -> np.ndarray:
    """The ink as a mask, whichever the polarity (the corners are paper)."""
    gray = np.asarray(image.convert("L"), np.float32)
    dark_paper = np.median(gray[[0, 0, -1, -1], [0, -1, 0, -1]]) < 128
    return gray > 128 if dark_paper else gray < 128


def test_thin_pen_numbers_are_small_with_strokes_one_or_two_pixels_wide() -> None:
    rng = np.random.default_rng(0)
    polarities = set()
    for _ in range(12):
        strip = number_strip([mnist_like(d, rng) for d in (3, 8, 5)], rng)
        image = thin_pen_scan(strip, rng)
        ink = ink_of(image)
        rows = np.nonzero(ink.any(axis=1))[0]
        assert 14 <= rows[-1] - rows[0] + 1 <= 34  # digits 16-28 px tall, slant and jitter aside
        assert 0.8 <= stroke_width(torch.from_numpy(ink)) <= 2.5
        polarities.add(bool(np.median(np.asarray(image)) < 128))
    assert polarities == {True, False}


def test_postal_scans_are_16_by_16_and_bolder_than_the_pen_they_came_from() -> None:
    rng = np.random.default_rng(0)
    ratios = []
    for digit in range(10):
        source = mnist_like(digit, rng)
        image = postal_scan(source, rng)
        assert image.size == (16, 16)
        ink = ink_of(image)
        rows = np.nonzero(ink.any(axis=1))[0]
        assert rows[0] <= 1 and rows[-1] >= 14  # the ink's box is stretched to the frame
        ys, xs = np.nonzero(source > 0.5)
        crop = source[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        plain = np.asarray(Image.fromarray((crop * 255).astype(np.uint8)).resize((16, 16))) > 128
        ratios.append(stroke_width(torch.from_numpy(ink)) / stroke_width(torch.from_numpy(plain)))
    assert np.mean(ratios) >= 1.8


def test_jittered_numbers_move_neighbours_by_up_to_half_a_digit() -> None:
    rng = np.random.default_rng(0)
    bar = np.zeros((28, 28), np.float32)
    bar[4:24, 12:16] = 1  # a digit 20 px tall
    tops = []
    for _ in range(20):
        strip = number_strip([bar] * 4, rng, jitter=5)
        columns = np.nonzero(strip.max(axis=0) > 0.5)[0]
        runs = np.split(columns, np.nonzero(np.diff(columns) > 1)[0] + 1)
        tops.append([np.nonzero(strip[:, run].max(axis=1) > 0.5)[0][0] for run in runs])
    steps = [abs(a - b) for row in tops for a, b in itertools.pairwise(row)]
    assert max(steps) > 5 and max(steps) <= 10 + 3  # up to half of 20 px (slant: +-3)
