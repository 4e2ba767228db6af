"""A photo with what digits read in it drawn on top (PIL only: predict does not wait for matplotlib)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from digits.atomic import save_image
from digits.reading.images import load_grayscale
from digits.reading.segment import Box


def annotate(photo: Path, readings: Sequence[tuple[Box | None, int | None]], out_dir: Path) -> Path:
    """The photo with each digit's box and reading (None: unsure, drawn as "?") on it, saved as
    <out_dir>/<photo's name>.png."""
    image = Image.fromarray(load_grayscale(photo).clip(0, 255).astype(np.uint8)).convert("RGB")
    draw = ImageDraw.Draw(image)
    for box, digit in readings:
        if box is None:
            continue
        colour = (220, 120, 0) if digit is None else (0, 150, 60)
        draw.rectangle((box.left, box.top, box.right, box.bottom), outline=colour, width=2)
        size = max(10, (box.bottom - box.top) // 3)
        label = "?" if digit is None else str(digit)
        font = ImageFont.load_default(size=size)
        draw.text((box.left, max(0, box.top - size - 2)), label, fill=colour, font=font)
    path = out_dir / f"{photo.stem}.png"
    save_image(image, path, "the annotated image")
    return path
