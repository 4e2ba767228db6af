"""Accuracy of `digits.predict` on photo-like digits, naive preprocessing against MNIST's recipe.

    python tools/photo_benchmark.py ckpt_path=<best cnn checkpoint> [count=300] [out=outputs/photos]

Makes a test set the way users' photos look: MNIST test digits (never seen in training) inverted to
dark ink on light paper, scaled up 4-10x with a margin and an off-centre position, on textured paper
under a light gradient, blurred, saved as RGB JPEG/PNG of various sizes; plus digits drawn with PIL
strokes. Then classifies every image with both preprocessings and prints the accuracies.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from digits.data.idx import load_mnist
from digits.predict import Predictor
from digits.reading.images import image_files

# Polylines in a unit box for digits drawn by hand (x right, y down).
STROKES = {
    0: [
        [(0.5, 0.05), (0.85, 0.3), (0.85, 0.7), (0.5, 0.95), (0.15, 0.7), (0.15, 0.3), (0.5, 0.05)]
    ],
    1: [[(0.35, 0.2), (0.55, 0.05), (0.55, 0.95)]],
    2: [[(0.15, 0.25), (0.5, 0.05), (0.85, 0.25), (0.15, 0.95), (0.9, 0.95)]],
    3: [[(0.15, 0.1), (0.8, 0.1), (0.45, 0.45), (0.85, 0.7), (0.5, 0.95), (0.15, 0.85)]],
    4: [[(0.65, 0.95), (0.65, 0.05), (0.1, 0.65), (0.9, 0.65)]],
    5: [
        [
            (0.85, 0.05),
            (0.2, 0.05),
            (0.15, 0.45),
            (0.7, 0.45),
            (0.85, 0.7),
            (0.6, 0.95),
            (0.15, 0.9),
        ]
    ],
    6: [
        [(0.75, 0.05), (0.25, 0.5), (0.2, 0.85), (0.5, 0.95), (0.8, 0.75), (0.5, 0.5), (0.22, 0.65)]
    ],
    7: [[(0.1, 0.08), (0.9, 0.08), (0.4, 0.95)]],
    8: [
        [
            (0.5, 0.5),
            (0.2, 0.25),
            (0.5, 0.05),
            (0.8, 0.25),
            (0.2, 0.75),
            (0.5, 0.95),
            (0.8, 0.75),
            (0.5, 0.5),
        ]
    ],
    9: [[(0.8, 0.45), (0.5, 0.55), (0.2, 0.3), (0.5, 0.05), (0.8, 0.3), (0.75, 0.95)]],
}


def paper(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Light paper with texture and a light gradient, grayscale float."""
    base = rng.uniform(170, 235)
    noise = rng.normal(128, rng.uniform(6, 16), (height, width)).clip(0, 255).astype(np.uint8)
    texture = (
        np.asarray(Image.fromarray(noise).filter(ImageFilter.GaussianBlur(1)), np.float32) - 128
    )
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width]
    ramp = (np.cos(angle) * xs / width + np.sin(angle) * ys / height) * rng.uniform(20, 60)
    return base + texture + ramp - ramp.mean()


def photograph(ink: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """Put an ink mask (0-1, digit-sized) on paper, off centre, blurred, as an RGB image."""
    scale = rng.uniform(4, 10)
    digit = Image.fromarray((ink * 255).astype(np.uint8)).resize(
        (int(ink.shape[1] * scale), int(ink.shape[0] * scale)), Image.BILINEAR
    )
    height = int(digit.height * rng.uniform(1.3, 2.5))
    width = int(digit.width * rng.uniform(1.3, 2.5))
    top = int(rng.uniform(0, height - digit.height))
    left = int(rng.uniform(0, width - digit.width))
    mask = np.zeros((height, width), np.float32)
    mask[top : top + digit.height, left : left + digit.width] = np.asarray(digit) / 255.0
    sheet = paper(rng, height, width)
    darkness = rng.uniform(0.55, 0.85)
    gray = sheet * (1 - darkness * mask)
    image = Image.fromarray(gray.clip(0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(rng.uniform(0.5, 2.0))
    )
    tint = np.array([1.0, rng.uniform(0.95, 1.0), rng.uniform(0.85, 0.97)])
    rgb = (np.asarray(image, np.float32)[..., None] * tint).clip(0, 255).astype(np.uint8)
    return Image.fromarray(rgb, "RGB")


def drawn_digit(digit: int, rng: np.random.Generator) -> np.ndarray:
    """A digit drawn with a pen in PIL, as an ink mask."""
    size = 40
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    jitter = lambda: rng.uniform(-0.04, 0.04)  # noqa: E731
    for line in STROKES[digit]:
        points = [
            ((x + jitter()) * (size - 8) + 4, (y + jitter()) * (size - 8) + 4) for x, y in line
        ]
        draw.line(points, fill=255, width=int(rng.integers(3, 6)), joint="curve")
    return np.asarray(canvas, np.float32) / 255.0


def save(image: Image.Image, path: Path, rng: np.random.Generator) -> None:
    if path.suffix == ".jpg":
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=int(rng.integers(50, 90)))
        path.write_bytes(buffer.getvalue())
    else:
        image.save(path)


def make_photos(out: Path, count: int, data_root: str, seed: int = 0) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images, labels = load_mnist(data_root, train=False)
    for i, index in enumerate(rng.choice(len(labels), count, replace=False)):
        photo = photograph(images[index].numpy() / 255.0, rng)
        save(
            photo, out / f"mnist{i:04d}_label{int(labels[index])}.{rng.choice(['jpg', 'png'])}", rng
        )
    for i in range(20):
        digit = i % 10
        save(photograph(drawn_digit(digit, rng), rng), out / f"drawn{i:02d}_label{digit}.png", rng)


def main(args: dict[str, str]) -> None:
    import os

    out = Path(args.get("out", "outputs/photos"))
    data_root = args.get("data_root", os.environ.get("DIGITS_DATA_DIR", "data"))
    make_photos(out, int(args.get("count", 300)), data_root)
    files = image_files([str(out)])
    truth = [int(f.stem.rsplit("label", 1)[1]) for f in files]
    predictor = Predictor(args["ckpt_path"])
    for preprocess in ("naive", "mnist"):
        predictions = predictor(files, preprocess, top_k=3)
        right = [p.digit == t for p, t in zip(predictions, truth, strict=True)]
        drawn = [r for r, f in zip(right, files, strict=True) if f.name.startswith("drawn")]
        print(
            f"preprocess={preprocess:5s}  accuracy {np.mean(right):.1%} on {len(files)} photos"
            f"  (drawn with PIL strokes: {sum(drawn)}/{len(drawn)})"
        )


if __name__ == "__main__":
    main(dict(arg.split("=", 1) for arg in sys.argv[1:]))
