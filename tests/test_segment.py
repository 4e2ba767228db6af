"""Reading numbers and sheets: finding each digit, in reading order (digits.reading.segment), and
`digits.predict mode=number`."""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from awkward_images import dot_grid, heavy_family  # tools/awkward_images.py
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from conftest import REAL_DATA, run_cli
from digits.reading import segment
from digits.reading.preprocess import BlankImage
from digits.reading.segment import (
    MAX_CANDIDATES,
    Deadline,
    ReadingTimeout,
    TooMuchInk,
    _best_reading,
    digits_in,
)
from digits.runs import RunDir


def written(
    rows: list[str], spacing: int = 8, size: int = 64, lifts: dict[int, int] | None = None
) -> Image.Image:
    """Dark digits on light paper, one line per row, `spacing` px between glyphs (negative: they
    touch), the i-th glyph of a row `lifts[i]` px higher (negative: lower)."""
    font = ImageFont.load_default(size=size)
    width = 20 + max(map(len, rows)) * (size * 3 // 4 + max(spacing, 0)) + 20
    image = Image.new("L", (width, (size + 30) * len(rows) + 20), 235)
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(rows):
        x = 20.0
        for i, character in enumerate(line):
            lift = (lifts or {}).get(i, 0)
            draw.text((x, 10 + row * (size + 30) - lift), character, fill=30, font=font)
            x += draw.textlength(character, font=font) + spacing
    return image


def gray(image: Image.Image) -> np.ndarray:
    return np.asarray(image, np.float32)


def test_a_written_number_gives_one_box_per_digit_left_to_right() -> None:
    found = digits_in(gray(written(["2026"])))
    assert len(found) == 4 and {d.row for d in found} == {0}
    lefts = [d.box.left for d in found]
    assert lefts == sorted(lefts)
    assert all(a.box.right <= b.box.left for a, b in itertools.pairwise(found))
    assert all(d.image.shape == (28, 28) and d.image.max() > 0.9 for d in found)


def test_touching_digits_are_split() -> None:
    image = gray(written(["2026"], spacing=-6))
    pieces = ndimage.label(image < 128, structure=np.ones((3, 3)))[1]
    assert pieces < 4  # some digits do touch
    found = digits_in(image)
    assert len(found) == 4
    widths = [d.box.right - d.box.left for d in found]
    assert max(widths) < 1.3 * min(widths)  # cut between digits, not through one


def test_a_sheet_is_read_row_by_row() -> None:
    found = digits_in(gray(written(["123", "4567"])))
    assert [d.row for d in found] == [0, 0, 0, 1, 1, 1, 1]
    assert found[3].box.top > found[2].box.bottom  # the second row starts below the first
    assert [d.box.left for d in found[3:]] == sorted(d.box.left for d in found[3:])


def test_a_digit_written_higher_than_its_neighbours_stays_in_their_row() -> None:
    # The 5 sits 26 px above the others (of about 46 px of ink): less than half of it shares
    # their rows, but it overlaps their band and no other.
    image = written(["5133"], lifts={0: 26}, size=64)
    image = Image.fromarray(np.pad(np.asarray(image), ((30, 0), (0, 0)), constant_values=235))
    found = digits_in(gray(image))
    assert len(found) == 4 and {d.row for d in found} == {0}
    assert [d.box.left for d in found] == sorted(d.box.left for d in found)
    overlap = min(found[0].box.bottom, found[1].box.bottom) - max(
        found[0].box.top, found[1].box.top
    )
    assert 0 < overlap < 0.5 * (found[0].box.bottom - found[0].box.top)  # the case the rule is for


def test_the_pieces_of_one_digit_stay_one_digit() -> None:
    image = Image.new("L", (120, 140), 235)
    draw = ImageDraw.Draw(image)
    draw.line([(40, 50), (35, 80), (70, 78), (80, 100), (70, 125), (35, 120)], fill=30, width=7)
    draw.line([(42, 40), (85, 40)], fill=30, width=7)  # a 5's flag, not touching its body
    assert ndimage.label(gray(image) < 128, structure=np.ones((3, 3)))[1] == 2
    assert len(digits_in(gray(image))) == 1


def test_a_thin_pens_broken_strokes_are_one_digit() -> None:
    image = Image.new("L", (120, 160), 235)
    draw = ImageDraw.Draw(image)
    draw.arc((30, 20, 90, 140), start=100, end=260, fill=30, width=2)  # a 0 broken at the
    draw.arc((30, 20, 90, 140), start=280, end=80, fill=30, width=2)  # top and at the bottom
    assert ndimage.label(gray(image) < 128, structure=np.ones((3, 3)))[1] == 2
    (zero,) = digits_in(gray(image))
    assert zero.box.bottom - zero.box.top > 100 and zero.box.right - zero.box.left > 50


def test_a_cut_through_several_strokes_needs_more_than_sure_halves() -> None:
    def sure_of_halves(images: torch.Tensor) -> torch.Tensor:  # a 3 for anything narrow
        ink = images > 0.3
        narrow = ink.any(dim=1).sum(dim=1) < 0.5 * ink.any(dim=2).sum(dim=1)
        probabilities = torch.full((len(images), 10), 0.3 / 9)
        probabilities[:, 8] = 0.7
        probabilities[narrow] = torch.full((10,), 0.01 / 9).index_fill(0, torch.tensor(3), 0.99)
        return probabilities

    image = Image.new("L", (140, 160), 235)
    draw = ImageDraw.Draw(image)
    draw.ellipse((40, 20, 100, 80), outline=30, width=2)  # a thin pen's 8: the cut through its
    draw.ellipse((35, 78, 105, 140), outline=30, width=2)  # middle crosses three strokes
    (eight,) = digits_in(gray(image), classify=sure_of_halves)  # 0.7 beats 0.99 * 0.99 here
    assert eight.box.right - eight.box.left > 60


def test_specks_far_apart_are_not_joined_into_a_digit() -> None:
    def sure_of_anything(images: torch.Tensor) -> torch.Tensor:
        return torch.full((len(images), 10), 0.01 / 9).index_fill(1, torch.tensor(1), 0.99)

    image = Image.new("L", (200, 140), 235)
    draw = ImageDraw.Draw(image)
    for left in (40, 150):
        draw.rectangle((left, 20, left + 10, 120), fill=30)  # two 1s
    for top in (20, 112):
        draw.rectangle((95, top, 103, top + 8), fill=30)  # a speck above, one below, between them
    assert ndimage.label(gray(image) < 128, structure=np.ones((3, 3)))[1] == 4
    # Together the specks span a digit's height, but hold ink in few of its rows.
    assert len(digits_in(gray(image), classify=sure_of_anything)) == 2


def test_specks_are_no_digits() -> None:
    image = written(["3"])
    draw = ImageDraw.Draw(image)
    right = int(np.nonzero((gray(image) < 128).any(axis=0))[0].max())
    draw.ellipse((right + 40, 40, right + 48, 48), fill=30)  # a blot, too far off to be the 3's
    assert ndimage.label(gray(image) < 128, structure=np.ones((3, 3)))[1] == 2
    assert len(digits_in(gray(image))) == 1


def test_two_digits_side_by_side_are_never_read_as_one() -> None:
    def likes_wide_ink(images: torch.Tensor) -> torch.Tensor:  # sure of "0" for anything wide
        ink = images > 0.3
        wide = ink.any(dim=1).sum(dim=1) > ink.any(dim=2).sum(dim=1)
        probabilities = torch.full((len(images), 10), 0.1)
        probabilities[wide] = torch.eye(10)[0]
        return probabilities

    image = gray(written(["11"], spacing=-12))
    assert ndimage.label(image < 128, structure=np.ones((3, 3)))[1] == 2  # apart, but close
    assert len(digits_in(image, classify=likes_wide_ink)) == 2


def test_a_row_is_read_as_the_likeliest_digits_and_may_leave_out_a_speck() -> None:
    spans = [(0, 1), (1, 2), (0, 2), (2, 3)]  # parts 0 and 1 alone or together, part 2 alone
    sure = torch.tensor([0.9, 0.9, 0.99, 0.1], dtype=torch.float64)
    assert _best_reading(3, spans, sure.log(), droppable={2}) == [2]  # 0.99 > 0.81; 0.1 < 0.5
    unsure = torch.tensor([0.9, 0.9, 0.5, 0.9], dtype=torch.float64)
    assert _best_reading(3, spans, unsure.log(), droppable={2}) == [0, 1, 3]


@pytest.mark.real_data
def test_the_classifier_reads_touching_mnist_digits_better_than_shapes_alone(
    real_mnist_run: Path,
) -> None:
    from digits.data.idx import load_mnist
    from digits.inference.predictor import Predictor

    images, labels = load_mnist(str(REAL_DATA), train=False)
    predictor = Predictor(RunDir(real_mnist_run).best_checkpoint())
    rng = np.random.default_rng(0)
    right = {"classifier": 0, "shape": 0}
    for _ in range(40):
        chosen = rng.choice(len(labels), 4, replace=False)
        crops = [images[j].numpy()[:, images[j].numpy().max(axis=0) > 25] for j in chosen]
        strip = np.pad(np.concatenate(crops, axis=1), 8)  # side by side, touching where inked
        truth = [int(labels[j]) for j in chosen]
        for scoring, classify in (("classifier", predictor.probabilities), ("shape", None)):
            found = digits_in(255.0 - strip, classify=classify)
            read = predictor.probabilities(torch.stack([d.image for d in found])).argmax(dim=1)
            right[scoring] += read.tolist() == truth
    assert right["classifier"] >= 20 and right["classifier"] > right["shape"] + 3, right


@pytest.mark.real_data
def test_predict_mode_auto_answers_one_digit_as_a_digit_and_several_as_a_number(
    real_mnist_run: Path, tmp_path: Path
) -> None:
    from digits.data.idx import load_mnist

    images, _ = load_mnist(str(REAL_DATA), train=False)
    paper = [255 - np.pad(images[j].numpy(), 6) for j in range(3)]  # dark on light, apart
    Image.fromarray(paper[0]).resize((136, 136)).save(tmp_path / "one.png")
    Image.fromarray(np.concatenate(paper, axis=1)).resize((360, 120)).save(tmp_path / "three.png")
    result = run_cli(
        "digits.predict",
        f"ckpt_path={RunDir(real_mnist_run).best_checkpoint()}",
        f"images=[{tmp_path}]",
        "mode=auto",
        "output=json",
        cwd=tmp_path,
        data_root=None,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    one, three = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert one["file"].endswith("one.png") and "digits" not in one and 0 <= one["digit"] <= 9
    assert three["file"].endswith("three.png") and len(three["text"]) == len(three["digits"]) == 3


def test_a_blank_sheet_has_no_digits() -> None:
    with pytest.raises(BlankImage):
        digits_in(np.full((100, 300), 230, np.float32))


def test_predict_mode_number_reports_each_digit_and_annotates(
    trained_run: Path, tmp_path: Path
) -> None:
    written(["2026", "153"]).convert("RGB").save(tmp_path / "sheet.jpg")
    result = run_cli(
        "digits.predict",
        f"ckpt_path={RunDir(trained_run).best_checkpoint()}",
        f"images=[{tmp_path / 'sheet.jpg'}]",
        "mode=number",
        "output=json",
        f"annotate={tmp_path / 'annotated'}",
        cwd=tmp_path,
        data_root=None,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (record,) = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [len(line) for line in record["text"].split("\n")] == [4, 3]
    assert [d["row"] for d in record["digits"]] == [0, 0, 0, 0, 1, 1, 1]
    first = record["digits"][0]
    assert set(first["box"]) == {"top", "left", "bottom", "right"} and 0 <= first["confidence"] <= 1
    assert record["text"].replace("\n", "") == "".join(str(d["digit"]) for d in record["digits"])
    with Image.open(tmp_path / "annotated" / "sheet.png") as annotated:
        assert annotated.size == Image.open(tmp_path / "sheet.jpg").size
        coloured = np.asarray(annotated.convert("RGB")).astype(int)
        assert (np.abs(coloured[..., 0] - coloured[..., 1]) > 60).any()  # boxes on the gray photo


def random_classifier(images: torch.Tensor) -> torch.Tensor:
    return torch.softmax(
        torch.randn(len(images), 10, generator=torch.Generator().manual_seed(0)), 1
    )


def test_reading_any_ink_is_bounded_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scribbles of 100-2,000 strokes, dot grids and noise: each is read or refused as too much
    ink, and no image makes more than MAX_CANDIDATES candidate digits (a 400-stroke scribble once
    made enough to run for minutes)."""
    made: list[int] = []
    centre = segment.box_and_centre
    monkeypatch.setattr(segment, "box_and_centre", lambda d: made.append(1) or centre(d))
    outcomes = {}
    for name, image in heavy_family().items():
        made.clear()
        try:
            outcomes[name] = len(digits_in(gray(image), classify=random_classifier))
        except TooMuchInk as error:
            assert "too much ink to read as a number" in str(error)
            outcomes[name] = "refused"
        except BlankImage:
            outcomes[name] = "blank"
        assert len(made) <= MAX_CANDIDATES, name
    assert "refused" in outcomes.values() and any(isinstance(v, int) for v in outcomes.values())


def test_too_many_pieces_of_ink_are_refused_before_any_is_read() -> None:
    with pytest.raises(TooMuchInk, match=r"\d+ separate pieces \(at most \d+\)"):
        digits_in(gray(dot_grid(20)))


def test_reading_past_its_time_limit_stops_with_one_line() -> None:
    image = gray(written(["2026", "1234"]))
    assert len(digits_in(image, deadline=Deadline(60))) == 8
    with pytest.raises(ReadingTimeout, match=r"reading took longer than its limit \(1e-06 s\)"):
        digits_in(image, deadline=Deadline(1e-6))
    stop = threading.Event()
    stop.set()
    with pytest.raises(ReadingTimeout, match="the server is shutting down"):
        digits_in(image, deadline=Deadline(60, stop))
