"""A row of handwritten digits as the sequence reader sees it: its input contract, as MNIST's 28x28
field is the digit classifiers'. White ink on black, 0-1, STRIP_HEIGHT pixels high; the row's ink
box scaled to INK_HEIGHT pixels high (its aspect kept), centred vertically, with MARGIN pixels of
black on the left and the right. Training strips (digits.data.numbers) and the rows found in a
photo (digits.inference) are both laid out by `lay_out`, so the model sees the same either way."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from digits.errors import DigitsError

STRIP_HEIGHT = 32
INK_HEIGHT = 24
MARGIN = 4
# The widest strip read at once: about 40 digits. A row whose ink is wider for its height (a
# long rule, a scribble) is refused before any work is spent on it.
MAX_STRIP_WIDTH = 1024
INKED = 0.05  # a row or column holds ink where some pixel reaches this


class StripTooWide(DigitsError):
    """A row whose ink, laid out at the strip's height, is wider than MAX_STRIP_WIDTH."""


def strip_width(height: int, width: int) -> int:
    """How wide an ink box of this size is once laid out (margins included)."""
    return max(1, round(width * INK_HEIGHT / max(height, 1))) + 2 * MARGIN


def ink_box(ink: torch.Tensor) -> torch.Tensor:
    """The (H, W) ink cropped to the rows and columns that hold any (the whole of it if none)."""
    rows = (ink.amax(dim=1) >= INKED).nonzero().flatten()
    cols = (ink.amax(dim=0) >= INKED).nonzero().flatten()
    if not len(rows):
        return ink
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def lay_out(ink: torch.Tensor) -> torch.Tensor:
    """A row's ink (H, W), 0-1, white on black, as a strip (STRIP_HEIGHT, width): cropped to its
    ink, scaled to INK_HEIGHT high, centred, margins added. Raises StripTooWide past
    MAX_STRIP_WIDTH."""
    box = ink_box(ink)
    width = strip_width(*box.shape)
    if width > MAX_STRIP_WIDTH:
        raise StripTooWide(
            f"a row of ink {box.shape[1] / box.shape[0]:.0f} times as wide as it is high, "
            f"{width} px wide at the sequence reader's height ({STRIP_HEIGHT} px), over its "
            f"limit of {MAX_STRIP_WIDTH} (about 40 digits); crop the image to the number"
        )
    scaled = F.interpolate(
        box[None, None].float(),
        size=(INK_HEIGHT, width - 2 * MARGIN),
        mode="bilinear",
        antialias=True,
        align_corners=False,
    )[0, 0]
    top = (STRIP_HEIGHT - INK_HEIGHT) // 2
    strip = torch.zeros(STRIP_HEIGHT, width)
    strip[top : top + INK_HEIGHT, MARGIN : width - MARGIN] = scaled.clamp(0, 1)
    return strip


def batch_of(strips: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Strips of any widths as one batch (N, 1, STRIP_HEIGHT, widest), black on the right of the
    narrower ones, and their widths (N,)."""
    widths = torch.tensor([strip.shape[-1] for strip in strips], dtype=torch.int64)
    batch = torch.zeros(len(strips), 1, STRIP_HEIGHT, int(widths.max()) if len(strips) else 1)
    for i, strip in enumerate(strips):
        batch[i, 0, :, : strip.shape[-1]] = strip
    return batch, widths
