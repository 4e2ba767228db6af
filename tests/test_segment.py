"""Reading numbers and sheets: finding each digit, in reading order (digits.reading.segment), and
`digits.predict mode=number`."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from conftest import run_cli
from digits.reading.preprocess import BlankImage
from digits.reading.segment import digits_in
from digits.runs import RunDir


def written(rows: list[str], spacing: int = 8, size: int = 64) -> Image.Image:
    """Dark digits on light paper, one line per row, `spacing` px between glyphs (negative: they
    touch)."""
    font = ImageFont.load_default(size=size)
    width = 20 + max(map(len, rows)) * (size * 3 // 4 + max(spacing, 0)) + 20
    image = Image.new("L", (width, (size + 30) * len(rows) + 20), 235)
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(rows):
        x = 20.0
        for character in line:
            draw.text((x, 10 + row * (size + 30)), character, fill=30, font=font)
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


def test_the_pieces_of_one_digit_stay_one_digit() -> None:
    image = Image.new("L", (120, 140), 235)
    draw = ImageDraw.Draw(image)
    draw.line([(40, 50), (35, 80), (70, 78), (80, 100), (70, 125), (35, 120)], fill=30, width=7)
    draw.line([(42, 40), (85, 40)], fill=30, width=7)  # a 5's flag, not touching its body
    assert ndimage.label(gray(image) < 128, structure=np.ones((3, 3)))[1] == 2
    assert len(digits_in(gray(image))) == 1


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
