"""Digit files in the real formats, for the tests and `make hostile`: folders of labelled photos for
`data=folder` in the layouts users have (torchvision's ImageFolder, `<root>/<label>/<name>.png`, and
a `file,label` CSV), and USPS's own file format for `data=usps`. The digits are typeset (Pillow's
own font, so nothing is downloaded) at random sizes and places (photos: random shades on noisy
paper): each class has its own shape, as in handwriting, so a network can learn them."""

from __future__ import annotations

import bz2
import csv
import shutil
import struct
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def digit_photo(label: int, rng: np.random.Generator, size: int = 64) -> Image.Image:
    """A dark digit on light, slightly noisy paper, `size` pixels square."""
    font = ImageFont.load_default(size=int(rng.integers(size // 2, size * 3 // 4)))
    paper = int(rng.integers(200, 256))
    image = Image.new("L", (size, size), paper)
    place = (int(rng.integers(size // 8, size // 3)), int(rng.integers(0, size // 6)))
    ImageDraw.Draw(image).text(place, str(label), fill=int(rng.integers(0, 80)), font=font)
    noise = rng.normal(0, 4, (size, size))
    return Image.fromarray(np.clip(np.asarray(image) + noise, 0, 255).astype(np.uint8))


def write_digit_folder(
    root: Path,
    per_class: int,
    seed: int = 0,
    suffixes: tuple[str, ...] = (".png", ".jpg"),
    sizes: tuple[int, ...] = (64,),
) -> list[tuple[Path, int]]:
    """`per_class` photos of each digit in `root/<label>/`, the suffixes taken in turn, each photo
    one of `sizes` pixels square (drawn at random when there are several); returns (file, label)
    pairs."""
    rng = np.random.default_rng(seed)
    written = []
    for label in range(10):
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        for number in range(per_class):
            path = folder / f"photo{number}{suffixes[number % len(suffixes)]}"
            size = int(rng.choice(sizes)) if len(sizes) > 1 else sizes[0]
            digit_photo(label, rng, size).convert("RGB").save(path)
            written.append((path, label))
    return written


def write_labels_csv(table: Path, pairs: list[tuple[Path, int]]) -> None:
    """A `file,label` CSV of `pairs`, each file's path relative to the CSV's folder."""
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label"])
        for path, label in pairs:
            writer.writerow([path.relative_to(table.parent).as_posix(), label])


def folders_of_photos(where: Path) -> dict[str, Path]:
    """For the bad-input checks: a good folder (`photos`, 2 of each digit), folders with a class
    folder that is not a digit (`letter_photos`: "a", `ten_photos`: "10"), one with a damaged PNG
    (`bad_photos`: 3/cut.png), a CSV naming a missing file and one with a label of 12."""
    places = {
        name: where / name for name in ("photos", "letter_photos", "ten_photos", "bad_photos")
    }
    for folder in places.values():
        write_digit_folder(folder, per_class=2)
    for name, stray in (("letter_photos", "a"), ("ten_photos", "10")):
        (places[name] / stray).mkdir()
        shutil.copy(places["photos"] / "1" / "photo0.png", places[name] / stray)
    (places["bad_photos"] / "3" / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    places["missing_csv"] = where / "missing.csv"
    places["missing_csv"].write_text("file,label\nnope.png,3\n")
    places["label_csv"] = places["photos"] / "label.csv"
    places["label_csv"].write_text("file,label\n1/photo0.png,12\n")
    return places


def write_usps(root: Path, per_class: int, name: str = "usps.bz2", seed: int = 0) -> None:
    """USPS's file format (LIBSVM text, bz2): a line per digit, `label+1` then `index:value` for its
    256 pixels in [-1, 1], ink +1; the digits typeset white on black in 16x16, `per_class` each."""
    rng = np.random.default_rng(seed)
    lines = []
    for label in [label for label in range(10) for _ in range(per_class)]:
        image = Image.new("L", (16, 16), 0)
        font = ImageFont.load_default(size=int(rng.integers(11, 15)))
        place = (int(rng.integers(2, 6)), int(rng.integers(-2, 1)))
        ImageDraw.Draw(image).text(place, str(label), fill=255, font=font)
        values = np.asarray(image, dtype=np.float32) / 127.5 - 1
        pixels = " ".join(f"{i + 1}:{v:.3f}" for i, v in enumerate(values.flatten()))
        lines.append(f"{label + 1} {pixels}\n")
    root.mkdir(parents=True, exist_ok=True)
    with bz2.open(root / name, "wt") as handle:
        handle.writelines(lines)


def write_idx(path: Path, array: np.ndarray) -> None:
    """`array` in the IDX format of MNIST and its kin: a magic number naming the type (uint8, or
    QMNIST's int32 labels) and the dimensions, the big-endian sizes, then the values."""
    kind = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C}[array.dtype]
    header = struct.pack(f">I{array.ndim}I", kind << 8 | array.ndim, *array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + array.astype(array.dtype.newbyteorder(">")).tobytes())


def typeset_digits(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """uint8 (N, 28, 28) digits typeset white on black, as MNIST's (for the MNIST-like files)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((len(labels), 28, 28), dtype=np.uint8)
    for image, label in zip(images, labels, strict=True):
        canvas = Image.new("L", (28, 28), 0)
        font = ImageFont.load_default(size=int(rng.integers(18, 24)))
        place = (int(rng.integers(6, 10)), int(rng.integers(0, 3)))
        ImageDraw.Draw(canvas).text(place, str(int(label)), fill=255, font=font)
        image[:] = np.asarray(canvas)
    return images
