"""Turn a photo or scan of a handwritten digit into what MNIST looks like.

MNIST was made by fitting each digit's bounding box into 20x20 pixels (keeping the aspect ratio) and
centring it by its centre of mass in a 28x28 field, white ink on black. `mnist_like` repeats that on a
real image: grayscale, polarity, paper and lighting removed, crop, strokes brought to MNIST's width,
scale, centre. `mnist_v1` is the first recipe (no stroke normalisation) and `naive` the tutorials'
way (invert, squash to 28x28), both kept for comparison.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage

from digits.errors import DigitsError
from digits.reading.strokes import dilate, erode, stroke_width

WORK_SIZE = 256  # long side the cleanup works at; the result is 20 px anyway
SMALL_WORK_SIZE = 64  # smaller scans are enlarged to this first, so filters step finer than strokes
DIGIT_BOX = 20
FIELD = 28
MIN_CONTRAST = 40  # ink must stand this far (0-255) above the paper, or the image is blank
MASS_TRIM = 0.005  # ignore this share of ink mass at each edge when cropping (specks)
PAPER_NOISE = 10.0  # paper varying less than this (std, 0-255) around a plane is evenly lit
# Stroke widths are measured with the digit's box at 4x MNIST's 20 px (80 px): there MNIST's median
# stroke is 9.9 px and 80% of its strokes lie within 7.2-14.3 px (2.5 px at 20 px; measured on the
# first 2,000 training images with `stroke_width`). Strokes in that range are left as written.
STROKE_BOX = 4 * DIGIT_BOX
MNIST_STROKE = 10.0
MNIST_STROKE_RANGE = (7.0, 14.0)


class BlankImage(DigitsError):
    """The image holds no ink to classify."""


def naive(gray: np.ndarray) -> torch.Tensor:
    """The tutorials' preprocessing: invert and squash to 28x28. Returns 0-1, white on black."""
    image = Image.fromarray((255 - gray).clip(0, 255).astype(np.uint8)).resize((FIELD, FIELD))
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)


def _resize(image: torch.Tensor, scale: float) -> torch.Tensor:
    height, width = image.shape
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    mode = "area" if scale < 1 else "bilinear"
    return F.interpolate(image[None, None], size=size, mode=mode)[0, 0]


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


def _white_on_black(gray: np.ndarray, min_size: int) -> torch.Tensor:
    """The image at working size (at most WORK_SIZE, at least `min_size` on its long side), made
    white ink on black like MNIST."""
    image = torch.from_numpy(gray).float()  # any numeric dtype
    long_side = max(image.shape)
    if long_side > WORK_SIZE or long_side < min_size:
        image = _resize(image, (WORK_SIZE if long_side > WORK_SIZE else min_size) / long_side)
    border = torch.cat([image[0], image[-1], image[:, 0], image[:, -1]])
    if border.median() >= image.mean():  # the ink, a minority, pulls the mean below the paper
        image = 255 - image  # dark ink on light paper: make it white on black like MNIST
    return image


def ink_map(gray: np.ndarray) -> torch.Tensor:
    """Ink as bright-on-black 0-255, with paper texture and uneven light removed (the first
    recipe's way: its window can be narrower than a bold stroke in a small image, and eat it)."""
    image = _white_on_black(gray, min_size=0)
    # The background is what survives a local minimum wider than a stroke: subtract it.
    radius = max(2, max(image.shape) // 12)
    background = _min_filter(image, radius)
    ink = (image - _blur(background, radius)).clamp(min=0)
    return _blur(ink, 1)  # soften sensor noise and JPEG blocks before thresholding


def paper_plane(image: torch.Tensor) -> tuple[torch.Tensor, float]:
    """The paper's brightness as a plane (even light, or light falling off across the page),
    fitted by least squares to the pixels that are not ink (ink, brighter, is left out by a
    second fit), and how much the paper varies around it (std, 0-255)."""
    height, width = image.shape
    ys, xs = torch.meshgrid(
        torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij"
    )
    design = torch.stack([torch.ones_like(xs), xs, ys], dim=-1).view(-1, 3)
    values = image.reshape(-1, 1)
    paper = torch.ones(len(values), dtype=torch.bool)
    for _ in range(2):
        fit = torch.linalg.lstsq(design[paper], values[paper]).solution
        residual = (values - design @ fit).flatten()
        centre = residual[paper].median()
        spread = 1.4826 * (residual[paper] - centre).abs().median()  # robust std
        paper = residual <= centre + 3 * spread + 1
    return (design @ fit).view(height, width), float(residual[paper].std())


def clean_ink(gray: np.ndarray) -> torch.Tensor:
    """Ink as bright-on-black 0-255. Paper that is even, or lit by a light that falls off
    across it, loses its fitted plane (no window, so small tight scans keep their ink); paper lit
    unevenly loses what survives a local minimum over a window wider than the strokes."""
    image = _white_on_black(gray, min_size=SMALL_WORK_SIZE)
    plane, noise = paper_plane(image)
    if noise < PAPER_NOISE:
        ink = (image - plane).clamp(min=0)
    else:
        rough = image >= otsu_threshold(image)
        radius = max(2, max(image.shape) // 12, math.ceil(stroke_width(rough)))
        ink = (image - _blur(_min_filter(image, radius), radius)).clamp(min=0)
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


def _cropped_digit(ink: torch.Tensor) -> torch.Tensor:
    """The ink above Otsu's threshold, cropped to its box (specks at the edges trimmed), 0-1.
    Raises BlankImage when there is no ink."""
    if float(ink.max()) < MIN_CONTRAST:
        raise BlankImage("no ink found (blank image)")
    threshold = max(otsu_threshold(ink), MIN_CONTRAST / 2)
    ink = torch.where(ink >= threshold, ink, torch.zeros_like(ink))
    top, bottom = _span(ink.sum(dim=1))
    left, right = _span(ink.sum(dim=0))
    digit = ink[top:bottom, left:right]
    return digit / digit.max()


def box_and_centre(digit: torch.Tensor) -> torch.Tensor:
    """MNIST's layout: the digit's box fitted into 20x20 (aspect kept), centred by its centre of
    mass in a 28x28 field."""
    digit = _resize(digit, DIGIT_BOX / max(digit.shape))
    size = digit.shape
    rows, cols = torch.arange(size[0]).float(), torch.arange(size[1]).float()
    mass = digit.sum()
    centre_row = float((digit.sum(dim=1) * rows).sum() / mass)
    centre_col = float((digit.sum(dim=0) * cols).sum() / mass)
    top = min(max(round(FIELD / 2 - 0.5 - centre_row), 0), FIELD - size[0])
    left = min(max(round(FIELD / 2 - 0.5 - centre_col), 0), FIELD - size[1])
    field = torch.zeros(FIELD, FIELD)
    field[top : top + size[0], left : left + size[1]] = digit
    return field.clamp(0, 1)


def mnist_rule(digit: torch.Tensor) -> torch.Tensor:
    """A clean digit already white on black (0-1, any size: USPS's 16x16 scans) laid out by the
    rule MNIST's digits were made with: its ink's box fitted into 20x20, aspect kept, centred by
    its centre of mass in 28x28. No cleanup: there is no paper, light or noise to remove. Raises
    BlankImage."""
    rows, cols = (digit > 0).any(dim=1).nonzero(), (digit > 0).any(dim=0).nonzero()
    if not len(rows):
        raise BlankImage("no ink found (blank image)")
    return box_and_centre(digit[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1])


def _pieces(image: torch.Tensor) -> int:
    """How many separate strokes (8-connected) the image's ink at half strength forms."""
    return ndimage.label((image > 0.5).numpy(), structure=np.ones((3, 3)))[1]


def normalise_stroke(digit: torch.Tensor) -> torch.Tensor:
    """Thicken a thin pen's strokes to MNIST's median width (reconnecting where they broke), or
    thin a marker's to the top of MNIST's range without breaking any stroke apart; widths within
    MNIST's range are kept. `digit`: a cropped digit, 0-1, zero off the ink. Returns it cropped
    again."""
    # Measured as on MNIST: ink at half the darkest's strength or more, at the 80 px scale.
    width = stroke_width(digit > 0.5) * STROKE_BOX / max(digit.shape)
    low, high = MNIST_STROKE_RANGE
    if low <= width <= high:
        return digit
    if max(digit.shape) < STROKE_BOX:  # work at 80 px at least, so the radius is whole pixels
        digit = _resize(digit, STROKE_BOX / max(digit.shape))
    pixels = max(digit.shape) / STROKE_BOX  # pixels here per pixel at the 80 px scale
    if width < low:
        radius = round((MNIST_STROKE - width) / 2 * pixels)
        changed = dilate(F.pad(digit, (radius,) * 4), radius)
    else:
        changed, pieces = digit, _pieces(digit)
        for radius in range(round((width - high) / 2 * pixels), 0, -1):
            eroded = erode(digit, radius)
            if _pieces(eroded) == pieces:  # no stroke broke apart or vanished
                changed = eroded
                break
    ink = changed > 0.05
    rows, cols = ink.any(dim=1).nonzero(), ink.any(dim=0).nonzero()
    return changed[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def mnist_like(gray: np.ndarray) -> torch.Tensor:
    """MNIST's own recipe on a real image, with its strokes brought to MNIST's width. Returns
    28x28, 0-1, white ink on black. Raises BlankImage when there is no ink."""
    return box_and_centre(normalise_stroke(_cropped_digit(clean_ink(gray))))


def mnist_v1(gray: np.ndarray) -> torch.Tensor:
    """The first recipe: MNIST's layout without stroke normalisation, and a
    background window that can eat bold strokes in small images. Kept for comparison."""
    return box_and_centre(_cropped_digit(ink_map(gray)))


def drawing(gray: np.ndarray) -> torch.Tensor:
    """A clean drawing (dark ink on white, 0-255, as drawn on a canvas) made MNIST-like with only
    what a drawing needs: every pixel darker than white is ink; crop to it, scale to 0-1, fit and
    centre (`box_and_centre`); no paper, light or stroke width to correct. The page that needs no
    server (digits/exported/web_page/page.js) does this in the browser. Raises BlankImage."""
    ink = torch.from_numpy(255 - gray.astype(np.float32))
    rows, cols = torch.nonzero(ink.sum(dim=1)).flatten(), torch.nonzero(ink.sum(dim=0)).flatten()
    if not len(rows):
        raise BlankImage("no ink found (blank image)")
    digit = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return box_and_centre(digit / digit.max())


def scan(gray: np.ndarray) -> torch.Tensor:
    """A clean scan of one digit (a postal code's digit, a form's box), laid out by MNIST's own rule
    (`mnist_rule`): the ink is what differs from the paper (the border's median shade, light or
    dark), with no cleanup of light or noise and no change of stroke width, which a scan does not
    need. Returns 28x28, 0-1, white ink on black. Raises BlankImage when there is no ink."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    ink = torch.from_numpy(np.abs(gray - np.median(border)).astype(np.float32))
    if float(ink.max()) < MIN_CONTRAST:
        raise BlankImage("no ink found (blank image)")
    ink = torch.where(ink >= MIN_CONTRAST / 2, ink, torch.zeros_like(ink))
    return mnist_rule(ink / ink.max())


PREPROCESSORS = {"mnist": mnist_like, "mnist_v1": mnist_v1, "scan": scan, "naive": naive}
