"""Accuracy of `digits.predict` on photo-like digits, for each preprocessing (naive, mnist_v1, mnist).

    python tools/photo_benchmark.py ckpt_path=<checkpoint> [count=300] [out=outputs/photos]

Makes test sets the way users' photos and scans look, from MNIST test digits (never seen in
training), dark ink on light paper, and reports the accuracy of each preprocessing on each:
- photo: scaled up 4-10x with a margin, off centre, on textured paper under a light gradient,
  blurred, saved as RGB JPEG/PNG of various sizes;
- ballpoint / marker: the same, with the strokes thinned to about 1 px at MNIST's scale (as far
  as they go without breaking) or thickened to about 5 px, by the morphology digits.reading.strokes uses;
- small: tightly cropped scans of 16-28 px, the digit touching the edges, on noisy paper;
- postal: 16x16 scans of bold digits, the ink's box stretched to fill them (as postal-code scans
  such as USPS keep them), dark on light or white on black;
- drawn: digits drawn with PIL strokes (20 images);
- european: 1s drawn as in much of Europe, with a long flag, half of them with a base (20).
And for `digits.predict mode=number`: numbers of 3-6 MNIST test digits side by side (gaps of -2 to 6
px at MNIST's scale, so some touch; each digit up to 2 px up or down; slanted up to 10 degrees; the
MNIST pen, a ballpoint or a marker) and sheets of 2-3 such rows, photographed as above
(`numbers=100`, `sheets=30`); numbers written small with a thin pen (thin: digits 16-28 px tall,
1-2 px strokes with a few breaks, JPEG, either polarity); and numbers whose neighbouring digits sit
up to half a digit's height higher or lower (jitter). Prints one table per set, and predict's time
per image; and how `mode=auto` (one digit or a number, decided per image) does on them.
"""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import numpy as np
import torch
from digit_files import write_labels_csv
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage

from digits.data.idx import load_mnist
from digits.inference.predictor import Predictor
from digits.reading.images import image_files
from digits.reading.preprocess import PREPROCESSORS
from digits.reading.strokes import dilate, erode

CATEGORIES = ("photo", "ballpoint", "marker", "small", "postal", "drawn", "european")
PEN_SCALE = 8  # pens are drawn on the digit enlarged this much: MNIST's ~2.5 px stroke is ~20 px

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


def photograph(
    ink: np.ndarray, rng: np.random.Generator, scale: float | None = None
) -> Image.Image:
    """Put an ink mask (0-1) on paper, off centre, blurred, as an RGB image; the mask is enlarged
    by `scale` (default: random 4-10x) first."""
    scale = rng.uniform(4, 10) if scale is None else scale
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


# A 1 as it is written in much of Europe: a long flag, and (drawn half the time) a base.
EUROPEAN_ONE = [[(0.2, 0.35), (0.6, 0.05), (0.6, 0.95)], [(0.3, 0.95), (0.9, 0.95)]]


def drawn_digit(digit: int, rng: np.random.Generator, lines: list | None = None) -> np.ndarray:
    """A digit drawn with a pen in PIL (`lines`, default STROKES[digit]), as an ink mask."""
    size = 40
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    jitter = lambda: rng.uniform(-0.04, 0.04)  # noqa: E731
    for line in STROKES[digit] if lines is None else lines:
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


def pen(digit: np.ndarray, radius: int) -> np.ndarray:
    """An MNIST digit (0-1) enlarged PEN_SCALE times and redrawn with a thinner (negative radius)
    or thicker pen, as an ink mask."""
    big = torch.from_numpy(np.kron(digit, np.ones((PEN_SCALE, PEN_SCALE)))).float()
    big = torch.nn.functional.avg_pool2d(big[None, None], 5, 1, 2)[0, 0]  # soften the blocks
    mask = (big > 0.5).float()
    if radius > 0:
        return dilate(mask, radius).numpy()
    pieces = ndimage.label(mask.numpy())[1]
    for thinner in range(-radius, 0, -1):  # as thin as it gets without breaking a stroke
        thinned = erode(mask, thinner).numpy()
        if ndimage.label(thinned)[1] <= pieces:
            return thinned
    return mask.numpy()


def small_scan(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A tight crop of the digit (touching the edges) at 16-28 px, on noisy paper, grayscale."""
    rows, cols = np.nonzero(digit > 0.1)
    crop = digit[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    size = int(rng.integers(16, 29))
    scale = size / max(crop.shape)
    shape = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    ink = np.asarray(Image.fromarray((crop * 255).astype(np.uint8)).resize(shape, Image.BILINEAR))
    paper = rng.uniform(180, 230) + rng.normal(0, rng.uniform(3, 12), ink.shape)
    gray = paper * (1 - rng.uniform(0.6, 0.85) * ink / 255.0)
    return Image.fromarray(gray.clip(0, 255).astype(np.uint8))


def number_strip(digits: list[np.ndarray], rng: np.random.Generator, jitter: int = 2) -> np.ndarray:
    """MNIST digits (28x28, 0-1) side by side as one ink mask: each cut to its ink's columns, -2 to
    6 px apart (negative: touching), each up to `jitter` px up or down (2: a steady hand; 5:
    neighbours up to 10 px, half a digit's height, apart), the whole slanted up to 10 degrees."""
    crops = []
    for digit in digits:
        cols = np.nonzero(digit.max(axis=0) > 0.1)[0]
        crops.append(digit[:, cols[0] : cols[-1] + 1])
    gaps = rng.integers(-2, 7, len(crops))
    gaps[0] = 8  # the margin
    height = 32 + 2 * jitter
    strip = np.zeros((height, int(sum(c.shape[1] for c in crops) + gaps.sum() + 8)), np.float32)
    x = 0
    for crop, gap in zip(crops, gaps, strict=True):
        x += int(gap)
        top = 2 + jitter + int(rng.integers(-jitter, jitter + 1))
        region = strip[top : top + 28, x : x + crop.shape[1]]
        np.maximum(region, crop, out=region)
        x += crop.shape[1]
    shear = np.tan(np.radians(rng.uniform(-10, 10)))
    image = Image.fromarray((strip * 255).astype(np.uint8))
    slanted = image.transform(
        image.size, Image.AFFINE, (1, shear, -shear * height / 2, 0, 1, 0), resample=Image.BILINEAR
    )
    return np.asarray(slanted, np.float32) / 255.0


def thin_pen_scan(strip: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A number written small with a thin pen: the strip's digits 16-28 px tall, each stroke redrawn
    1-2 px wide along its middle, with a few breaks, scanned (light noise), dark on light or (half
    the time) white on black; JPEG artefacts come from save()."""
    big = pen(strip, 0)  # the strip PEN_SCALE times larger, as an ink mask
    distance = ndimage.distance_transform_edt(big)
    middle = (distance == ndimage.maximum_filter(distance, 3)) & (distance > 1)
    digit_height = rng.uniform(16, 28)
    scale = digit_height / (20 * PEN_SCALE)  # MNIST's digits are about 20 px tall in 28
    width = rng.uniform(1.0, 2.0)  # px, once scanned
    ink = dilate(torch.from_numpy(middle.astype(np.float32)), round(width / scale / 2)).numpy()
    rows, cols = np.nonzero(ink)
    for _ in range(int(rng.integers(1, 4))):  # breaks: a bite out of a stroke, about 1 px long
        i, bite = int(rng.integers(len(rows))), round(0.6 / scale)
        ink[max(0, rows[i] - bite) : rows[i] + bite, max(0, cols[i] - bite) : cols[i] + bite] = 0
    size = (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale)))
    small = np.asarray(Image.fromarray((ink * 255).astype(np.uint8)).resize(size, Image.BOX))
    small = (small / 255.0 * rng.uniform(1.0, 1.5)).clip(0, 1)  # a pen inks its pixels fully
    paper_level = rng.uniform(180, 235)
    gray = paper_level * (1 - rng.uniform(0.6, 0.9) * small)
    gray = gray + rng.normal(0, rng.uniform(2, 8), gray.shape)
    if rng.random() < 0.5:
        gray = 255 - gray
    return Image.fromarray(gray.clip(0, 255).astype(np.uint8))


def postal_scan(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A postal code's digit as such scans keep it: 16x16, the ink's box stretched to fill it,
    thick strokes, grayscale, dark on light or white on black."""
    bold = pen(digit, int(rng.integers(10, 17)))
    rows, cols = np.nonzero(bold)
    crop = bold[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    ink = np.asarray(Image.fromarray((crop * 255).astype(np.uint8)).resize((16, 16), Image.BOX))
    gray = rng.uniform(200, 240) * (1 - rng.uniform(0.7, 0.95) * ink / 255.0)
    gray = gray + rng.normal(0, rng.uniform(1, 6), gray.shape)
    if rng.random() < 0.5:
        gray = 255 - gray
    return Image.fromarray(gray.clip(0, 255).astype(np.uint8))


def number_photo(rows: list[np.ndarray], rng: np.random.Generator) -> Image.Image:
    """Rows of number strips, one under the other, with a random pen, photographed."""
    width = max(row.shape[1] for row in rows)
    sheet = np.zeros((sum(row.shape[0] + 6 for row in rows), width), np.float32)
    top = 0
    for row in rows:
        sheet[top : top + row.shape[0], : row.shape[1]] = row
        top += row.shape[0] + 6
    kind = rng.choice(["mnist", "ballpoint", "marker"])
    if kind == "mnist":
        return photograph(sheet, rng, scale=rng.uniform(3, 6))
    return photograph(pen(sheet, -6 if kind == "ballpoint" else 10), rng, rng.uniform(0.4, 0.8))


NUMBER_SETS = ("number", "sheet", "thin", "jitter")


def make_numbers(out: Path, numbers: int, sheets: int, data_root: str, seed: int = 1) -> None:
    """`numbers` one-row numbers, `sheets` sheets of 2-3 rows, and `numbers` each of small
    thin-pen numbers (thin) and of numbers whose neighbours sit up to half a digit higher or lower
    (jitter), named <set><index>_label<digits, rows joined by ->.<png|jpg>."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images, labels = load_mnist(data_root, train=False)
    sets = (("number", numbers, (1, 1)), ("sheet", sheets, (2, 3)), ("thin", numbers, (1, 1)),
            ("jitter", numbers, (1, 1)))  # fmt: skip
    for kind, count, row_counts in sets:
        for i in range(count):
            rows, texts = [], []
            for _ in range(int(rng.integers(row_counts[0], row_counts[1] + 1))):
                chosen = rng.choice(len(labels), int(rng.integers(3, 7)), replace=False)
                digits = [images[j].numpy() / 255.0 for j in chosen]
                rows.append(number_strip(digits, rng, jitter=5 if kind == "jitter" else 2))
                texts.append("".join(str(int(labels[j])) for j in chosen))
            name = f"{kind}{i:04d}_label{'-'.join(texts)}.{rng.choice(['jpg', 'png'])}"
            photo = thin_pen_scan(rows[0], rng) if kind == "thin" else number_photo(rows, rng)
            save(photo, out / name, rng)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: digits missed, added or misread."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def report_numbers(predictor: Predictor, files: list[Path]) -> None:
    """For each set and MNIST-like preprocessing: whole numbers (or sheets) read right, and digits
    right (1 - edit distance / digits)."""
    expected = [f.stem.rsplit("label", 1)[1] for f in files]
    kinds = [f.name.split("_")[0].rstrip("0123456789") for f in files]
    print("\n| mode, preprocess | " + " | ".join(f"{k}: whole, digits" for k in NUMBER_SETS)
          + " | ms per image |")  # fmt: skip
    print("|---" * (len(NUMBER_SETS) + 2) + "|")
    for mode, preprocess in (("number", "mnist"), ("number", "mnist_v1"), ("auto", "mnist")):
        start = time.perf_counter()
        read = predictor(files, preprocess, top_k=1, mode=mode)
        milliseconds = (time.perf_counter() - start) * 1000 / len(files)
        texts = [p.text.replace("\n", "-") for p in read]  # auto: a one-digit reading's digit
        cells = []
        for kind in NUMBER_SETS:
            pairs = [(t, e) for t, e, k in zip(texts, expected, kinds, strict=True) if k == kind]
            whole = np.mean([t == e for t, e in pairs])
            errors = sum(edit_distance(t.replace("-", ""), e.replace("-", "")) for t, e in pairs)
            digits = sum(len(e.replace("-", "")) for _, e in pairs)
            cells.append(f"{whole:.1%}, {max(0.0, 1 - errors / digits):.1%}")
        print(f"| {mode}, {preprocess} | {' | '.join(cells)} | {milliseconds:.1f} |")
    print(f"({', '.join(f'{k} {kinds.count(k)}' for k in NUMBER_SETS)} images)")


def make_photos(out: Path, count: int, data_root: str, seed: int = 0) -> None:
    """`count` images of each MNIST-made category, 20 drawn digits and 20 European 1s, named
    <category><index>_label<digit>.<png|jpg>, and a `file,label` CSV of each category's images,
    <category>.csv (for digits.evaluate data=folder data.labels=<csv>)."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images, labels = load_mnist(data_root, train=False)
    chosen = rng.choice(len(labels), count, replace=False)
    for i, index in enumerate(chosen):
        digit, label = images[index].numpy() / 255.0, int(labels[index])
        photos = {
            "photo": photograph(digit, rng),
            "ballpoint": photograph(pen(digit, -6), rng, scale=rng.uniform(0.5, 1.2)),
            "marker": photograph(pen(digit, 10), rng, scale=rng.uniform(0.5, 1.2)),
            "small": small_scan(digit, rng),
            "postal": postal_scan(digit, rng),
        }
        for category, photo in photos.items():
            suffix = rng.choice(["jpg", "png"])
            save(photo, out / f"{category}{i:04d}_label{label}.{suffix}", rng)
    for i in range(20):
        digit = i % 10
        save(photograph(drawn_digit(digit, rng), rng), out / f"drawn{i:02d}_label{digit}.png", rng)
    for i in range(20):
        one = drawn_digit(1, rng, EUROPEAN_ONE[: 1 + i % 2])
        save(photograph(one, rng), out / f"european{i:02d}_label1.png", rng)
    for category in CATEGORIES:  # each set as data=folder reads it: data.labels=<csv>
        files = sorted(out.glob(f"{category}[0-9]*_label*"))
        write_labels_csv(out / f"{category}.csv", [(f, int(f.stem[-1])) for f in files])


def main(args: dict[str, str]) -> None:
    import os

    out = Path(args.get("out", "outputs/photos"))
    data_root = args.get("data.root", os.environ.get("DIGITS_DATA_DIR", "data"))
    make_photos(out, int(args.get("count", 300)), data_root)
    files = image_files([str(out)])
    truth = [int(f.stem.rsplit("label", 1)[1]) for f in files]
    category = [f.name.split("_")[0].rstrip("0123456789") for f in files]
    predictor = Predictor(args["ckpt_path"])
    print("| preprocess | " + " | ".join(CATEGORIES) + " | all | ms per image |")
    print("|---" * (len(CATEGORIES) + 3) + "|")
    for preprocess in PREPROCESSORS:
        start = time.perf_counter()
        predictions = predictor(files, preprocess, top_k=3)
        milliseconds = (time.perf_counter() - start) * 1000 / len(files)
        right = np.array([p.digit == t for p, t in zip(predictions, truth, strict=True)])
        shares = [
            np.mean([r for r, c in zip(right, category, strict=True) if c == name])
            for name in CATEGORIES
        ]
        cells = " | ".join(f"{share:.1%}" for share in [*shares, right.mean()])
        print(f"| {preprocess} | {cells} | {milliseconds:.1f} |")
    start = time.perf_counter()
    auto = predictor(files, "mnist", top_k=1, mode="auto")
    milliseconds = (time.perf_counter() - start) * 1000 / len(files)
    several = sum(p.digits is not None for p in auto)
    right = np.mean([p.text == str(t) for p, t in zip(auto, truth, strict=True)])
    print(f"mode=auto, preprocess=mnist on the same images: {right:.1%} right "
          f"({several} read as several digits), {milliseconds:.1f} ms per image")  # fmt: skip
    print(
        f"({len(files)} images in {out}; counts: "
        + ", ".join(f"{name} {category.count(name)}" for name in CATEGORIES)
        + ")"
    )
    numbers_dir = out.parent / f"{out.name}-numbers"
    make_numbers(numbers_dir, int(args.get("numbers", 100)), int(args.get("sheets", 30)), data_root)
    report_numbers(predictor, image_files([str(numbers_dir)]))


if __name__ == "__main__":
    main(dict(arg.split("=", 1) for arg in sys.argv[1:]))
