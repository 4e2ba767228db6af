"""The two ways digits reads a number, head to head on the same images:

    python tools/read_numbers.py segment=<digit classifier ckpt> sequence=<number reader ckpt>
        [numbers=100] [sheets=30] [strips=1000] [count=300] [out=outputs/read-numbers]

The segmenting reader (`digits.predict mode=number`: find each digit, classify it) and the sequence
reader (`mode=number reader=sequence`: a model=crnn checkpoint reads each row whole) read:
- the photo benchmark's number sets (tools/photo_benchmark.py: number, sheet, thin, jitter; made of
  MNIST test digits, seeded, so every run reads the same images);
- `strips` MNIST-composed test strips: the first of the sequence reader's own test split
  (data=numbers from MNIST's test digits, as its run made them), saved as images 4x enlarged;
- the photo benchmark's single digits (photo, ballpoint, marker, small, postal: `count` each), the
  digit classifier reading each as one digit (mode=digit) and the sequence reader as a row.

Prints a table per comparison: whole numbers right with Wilson's 95% interval, McNemar's exact test
on the same images (the difference sequence - segmenting with its exact conditional interval), and
each reader's images per second (one process, this CPU). Then the sequence reader's speed on
5-digit strips read in batches of 256 (the reading alone, strips already laid out).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
from bench_numbers import five_digit_strips, timed
from photo_benchmark import CATEGORIES, NUMBER_SETS, make_numbers, make_photos
from PIL import Image

from digits.data.numbers import StripSet, StripStyle
from digits.inference.predictor import Predictor, StripModel
from digits.models.checkpoint import read_checkpoint
from digits.reading.images import image_files
from digits.uncertainty import accuracy_interval, paired_test


def label_of(path: Path) -> str:
    """The number a benchmark file holds (its name's label, rows joined by "-")."""
    return path.stem.rsplit("label", 1)[1]


def kind_of(path: Path) -> str:
    return path.name.split("_")[0].rstrip("0123456789")


def run_strips(ckpt: str, count: int, out: Path, data_root: str) -> None:
    """The first `count` test strips of the sequence reader's own run, as PNG images (dark ink on
    light, as written, enlarged 4x: at the strip's own 32 px a thin pen's 1 px strokes do not
    survive the photo cleanup), named strip<index>_label<number>.png."""
    from digits.data.idx import load_mnist

    saved = read_checkpoint(ckpt)["datamodule_hyper_parameters"]
    style = StripStyle.of(saved)
    images, labels = load_mnist(data_root, train=False)
    # The test split's strips: seed * 3 + 2, as digits.data.numbers makes them.
    strips = StripSet(images, labels, count, style, saved["seed"] * 3 + 2)
    out.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        strip, digits = strips.strip(index)
        number = "".join(str(int(d)) for d in digits)
        page = Image.fromarray(255 - (strip * 255).round().byte().numpy())
        page = page.resize((page.width * 4, page.height * 4), Image.BILINEAR)
        page.save(out / f"strip{index:05d}_label{number}.png")


def read(reader: Predictor, files: list[Path], mode: str) -> tuple[list[str], float]:
    """Each file's reading (rows joined by "-") and the images read per second."""
    start = time.perf_counter()
    predictions = reader(files, "mnist", top_k=1, mode=mode)
    per_second = len(files) / (time.perf_counter() - start)
    return [p.text.replace("\n", "-") for p in predictions], per_second


def compared(
    name: str,
    files: list[Path],
    segmenting: Predictor,
    sequence: Predictor,
    segmenting_mode: str = "number",
) -> str:
    """A table row: both readers on the same files."""
    a, a_speed = read(segmenting, files, segmenting_mode)
    b, b_speed = read(sequence, files, "number")
    return row(name, [label_of(f) for f in files], a, b, (a_speed, b_speed))


def row(name: str, truth: list[str], a: list[str], b: list[str], speeds: tuple) -> str:
    a_right = np.array([x == t for x, t in zip(a, truth, strict=True)])
    b_right = np.array([x == t for x, t in zip(b, truth, strict=True)])
    cells = [name, str(len(truth))]
    for right in (a_right, b_right):
        interval = accuracy_interval(int(right.sum()), len(right))
        cells.append(f"{right.mean():.1%} ({interval['low']:.1%}-{interval['high']:.1%})")
    test = paired_test(a_right, b_right)
    cells.append(
        f"{test['difference']:+.1%} ({test['low']:+.1%} to {test['high']:+.1%}); "
        f"{test['a_only']} vs {test['b_only']}, p = {test['p_value']:.2g}"
    )
    cells += [f"{speeds[0]:.0f}", f"{speeds[1]:.0f}"]
    return "| " + " | ".join(cells) + " |"


HEADER = (
    "| set | images | segmenting: whole (95%) | sequence: whole (95%) | sequence - segmenting "
    "(exact 95%); only A vs only B, McNemar p | segmenting images/s | sequence images/s |\n"
    "|---|---|---|---|---|---|---|"
)


def batched_speed(model: StripModel) -> float:
    """5-digit strips read per second in batches of 256 (the best of 3 rounds)."""
    strips = five_digit_strips(1024)
    return len(strips) / timed(lambda: model.read(strips, batch_size=256))


def main(args: dict[str, str]) -> None:
    out = Path(args.get("out", "outputs/read-numbers"))
    data_root = args.get("data.root", os.environ.get("DIGITS_DATA_DIR", "data"))
    segmenting = Predictor(args["segment"])
    sequence = Predictor(args["sequence"], reader="sequence")
    make_numbers(out / "numbers", int(args.get("numbers", 100)), int(args.get("sheets", 30)),
                 data_root)  # fmt: skip
    if args.get("only") == "strips":  # the strips alone (e.g. after changing how they are saved)
        run_strips(args["sequence"], int(args.get("strips", 1000)), out / "strips", data_root)
        print(HEADER)
        print(compared("strip", image_files([str(out / "strips")]), segmenting, sequence))
        return
    run_strips(args["sequence"], int(args.get("strips", 1000)), out / "strips", data_root)
    files = image_files([str(out / "numbers")]) + image_files([str(out / "strips")])
    print("Numbers\n\n" + HEADER)
    for kind in (*NUMBER_SETS, "strip"):
        print(compared(kind, [f for f in files if kind_of(f) == kind], segmenting, sequence))
    make_photos(out / "digits", int(args.get("count", 300)), data_root)
    singles = image_files([str(out / "digits")])
    print(
        "\nSingle digits (digit classifier mode=digit; sequence reader a row of one)\n\n" + HEADER
    )
    for kind in CATEGORIES[:5]:
        chosen = [f for f in singles if kind_of(f) == kind]
        print(compared(kind, chosen, segmenting, sequence, segmenting_mode="digit"))
    speed = batched_speed(sequence.model)
    print(f"\nsequence reader, 5-digit strips in batches of 256: {speed:.0f} strips/s")


if __name__ == "__main__":
    main(dict(arg.split("=", 1) for arg in sys.argv[1:]))
