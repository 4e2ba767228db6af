"""Images made to be hard on the reader and the decoders: scribbles of many short strokes, grids of
dots, noise (each costly to cut into digits if the work were not bounded), and a seeded corpus of
damaged image files (truncated, bytes flipped, headers cut). Used by the tests and `make hostile`.

    python tools/awkward_images.py --out outputs/awkward   # writes the lot, to try by hand
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

FORMATS = ("PNG", "JPEG", "GIF", "TIFF", "WEBP", "BMP")


def scribble(strokes: int, size: int = 1000, length: float = 30, seed: int = 0) -> Image.Image:
    """`strokes` short scribbled strokes (3 segments each, up to `length` px) on white paper."""
    rng = np.random.default_rng(seed)
    image = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(image)
    for _ in range(strokes):
        x, y = rng.uniform(0, size, 2)
        points = [(x, y)]
        for _ in range(3):
            x, y = x + rng.uniform(-length, length), y + rng.uniform(-length, length)
            points.append((x, y))
        draw.line(points, fill=0, width=int(rng.integers(1, 4)))
    return image


def dot_grid(step: int, radius: int = 3, size: int = 600) -> Image.Image:
    """Black dots of `radius` every `step` px, in rows and columns."""
    image = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(image)
    for x in range(step // 2, size, step):
        for y in range(step // 2, size, step):
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=0)
    return image


def noise(share: float, size: int = 500, seed: int = 0) -> Image.Image:
    """Black pixels scattered at random over `share` of a white image."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(np.where(rng.random((size, size)) < share, 0, 255).astype(np.uint8))


def heavy_family() -> dict[str, Image.Image]:
    """The images the reader's bounds are checked on, by name."""
    images = {f"scribble-{n}": scribble(n) for n in (100, 300, 400, 1000, 2000)}
    images |= {f"scribble-long-{n}": scribble(n, length=80) for n in (100, 400)}
    images |= {f"dots-{step}": dot_grid(step) for step in (10, 20, 43, 50)}
    images |= {f"noise-{share}": noise(share) for share in (0.02, 0.1, 0.5)}
    return images


def encoded(image: Image.Image, format: str) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB" if format == "JPEG" else "L").save(buffer, format=format)
    return buffer.getvalue()


def damaged_files(count: int, seed: int = 0) -> list[tuple[str, bytes]]:
    """`count` (name, bytes) image files in every format, each damaged one way: cut short, bytes
    flipped, a header's bytes overwritten, a chunk repeated, or a random length kept."""
    rng = np.random.default_rng(seed)
    sources = {f: encoded(scribble(6, size=64, seed=i), f) for i, f in enumerate(FORMATS)}
    files = []
    for index in range(count):
        format = FORMATS[index % len(FORMATS)]
        data = bytearray(sources[format])
        how = index // len(FORMATS) % 4
        if how == 0:  # cut short
            data = data[: int(rng.integers(1, len(data)))]
        elif how == 1:  # bytes flipped anywhere
            for at in rng.integers(0, len(data), int(rng.integers(1, 8))):
                data[at] ^= int(rng.integers(1, 256))
        elif how == 2:  # the header overwritten
            for at in rng.integers(0, min(64, len(data)), 4):
                data[at] = int(rng.integers(0, 256))
        else:  # a stretch repeated
            start = int(rng.integers(0, len(data)))
            data = data[:start] + data[start : start + 200] * 3 + data[start:]
        files.append((f"damaged-{index:04d}.{format.lower()}", bytes(data)))
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/awkward"))
    parser.add_argument("--damaged", type=int, default=300)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, image in heavy_family().items():
        image.save(args.out / f"{name}.png")
    for name, data in damaged_files(args.damaged):
        (args.out / name).write_bytes(data)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
