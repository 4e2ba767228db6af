"""Turn a photo or scan of a handwritten digit into what MNIST looks like.

MNIST was made by fitting each digit's bounding box into 20x20 pixels (keeping the aspect ratio) and
centring it by its centre of mass in a 28x28 field, white ink on black. `mnist_like` repeats that on a
real image: grayscale, polarity, paper and lighting removed, crop, scale, centre. `naive` is the
tutorials' way (invert, squash to 28x28) kept for comparison.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from digits.errors import DigitsError

WORK_SIZE = 256  # long side the cleanup works at; the result is 20 px anyway
DIGIT_BOX = 20
FIELD = 28
MIN_CONTRAST = 40  # ink must stand this far (0-255) above the paper, or the image is blank
MASS_TRIM = 0.005  # ignore this share of ink mass at each edge when cropping (specks)


class BlankImage(DigitsError):
    """The image holds no ink to classify."""


def naive(gray: np.ndarray) -> torch.Tensor:
    """The tutorials' preprocessing: invert and squash to 28x28. Returns 0-1, white on black."""
    image = Image.fromarray((255 - gray).clip(0, 255).astype(np.uint8)).resize((FIELD, FIELD))
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)


def _blur(image: torch.Tensor, radius: int) -> torch.Tensor:
    """Box average over a (2r+1)^2 window, as two 1-D passes (the box is separable)."""
    size = 2 * radius + 1
    x = F.avg_pool2d(image[None, None], (1, size), 1, (0, radius), count_include_pad=False)
    return F.avg_pool2d(x, (size, 1), 1, (radius, 0), count_include_pad=False)[0, 0]


def _min_filter(image: torch.Tensor, radius: int) -> torch.Tensor:
    """Minimum over a (2r+1)^2 window, as two 1-D passes (the window is separable)."""
    size = 2 * radius + 1
    x = -F.max_pool2d(-image[None, None], (1, size), 1, (0, radius))
    return -F.max_pool2d(-x, (size, 1), 1, (radius, 0))[0, 0]


def ink_map(gray: np.ndarray) -> torch.Tensor:
    """Ink as bright-on-black 0-255, with paper texture and uneven light removed."""
    image = torch.from_numpy(gray)
    height, width = image.shape
    scale = WORK_SIZE / max(height, width)
    if scale < 1:
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        image = F.interpolate(image[None, None], size=size, mode="area")[0, 0]
    border = torch.cat([image[0], image[-1], image[:, 0], image[:, -1]])
    if border.median() >= image.mean():  # the ink, a minority, pulls the mean below the paper
        image = 255 - image  # dark ink on light paper: make it white on black like MNIST
    # The background is what survives a local minimum wider than a stroke: subtract it.
    radius = max(2, max(image.shape) // 12)
    background = _min_filter(image, radius)
    ink = (image - _blur(background, radius)).clamp(min=0)
    return _blur(ink, 1)  # soften sensor noise and JPEG blocks before thresholding


def otsu_threshold(values: torch.Tensor) -> float:
    """The threshold that best separates two populations of 0-255 values (Otsu's method)."""
    histogram = torch.histc(values, bins=256, min=0, max=255).double()
    levels = torch.arange(256, dtype=torch.float64)
    weight = histogram.cumsum(0)
    mean = (histogram * levels).cumsum(0)
    total_weight, total_mean = weight[-1], mean[-1]
    between = (total_mean * weight - mean * total_weight) ** 2 / (
        weight * (total_weight - weight)
    ).clamp(min=1e-9)
    return float(between.argmax())


def _span(mass: torch.Tensor) -> tuple[int, int]:
    cumulative = mass.cumsum(0) / mass.sum()
    start = int((cumulative < MASS_TRIM).sum())
    end = int((cumulative < 1 - MASS_TRIM).sum()) + 1
    return start, max(end, start + 1)


def mnist_like(gray: np.ndarray) -> torch.Tensor:
    """MNIST's own recipe on a real image. Returns 28x28, 0-1, white ink on black.
    Raises BlankImage when there is no ink."""
    ink = ink_map(gray)
    if float(ink.max()) < MIN_CONTRAST:
        raise BlankImage("no ink found (blank image)")
    threshold = max(otsu_threshold(ink), MIN_CONTRAST / 2)
    ink = torch.where(ink >= threshold, ink, torch.zeros_like(ink))
    top, bottom = _span(ink.sum(dim=1))
    left, right = _span(ink.sum(dim=0))
    digit = ink[top:bottom, left:right]
    digit = digit / digit.max()
    height, width = digit.shape
    scale = DIGIT_BOX / max(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    digit = F.interpolate(digit[None, None], size=size, mode="area" if scale < 1 else "bilinear")[
        0, 0
    ]
    rows, cols = torch.arange(size[0]).float(), torch.arange(size[1]).float()
    mass = digit.sum()
    centre_row = float((digit.sum(dim=1) * rows).sum() / mass)
    centre_col = float((digit.sum(dim=0) * cols).sum() / mass)
    top = min(max(round(FIELD / 2 - 0.5 - centre_row), 0), FIELD - size[0])
    left = min(max(round(FIELD / 2 - 0.5 - centre_col), 0), FIELD - size[1])
    field = torch.zeros(FIELD, FIELD)
    field[top : top + size[0], left : left + size[1]] = digit
    return field.clamp(0, 1)


PREPROCESSORS = {"mnist": mnist_like, "naive": naive}
