"""Preprocessing of users' images and `digits.predict`, including every error path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from scipy import ndimage

from conftest import run_cli
from digits.errors import DigitsError
from digits.inference.predictor import Predictor
from digits.reading.images import image_files, load_grayscale
from digits.reading.preprocess import (
    MNIST_STROKE_RANGE,
    STROKE_BOX,
    BlankImage,
    mnist_like,
    mnist_rule,
    mnist_v1,
    naive,
    scan,
)
from digits.reading.strokes import stroke_width
from digits.runs import RunDir


def seven(size: int = 28) -> np.ndarray:
    """A white-on-black '7' stroke mask (0-1)."""
    canvas = Image.new("L", (size, size), 0)
    ImageDraw.Draw(canvas).line(
        [(0.25 * size, 0.2 * size), (0.75 * size, 0.2 * size), (0.45 * size, 0.85 * size)],
        fill=255,
        width=max(2, size // 10),
    )
    return np.asarray(canvas, np.float32) / 255.0


def photo_of(mask: np.ndarray, scale: int = 8, seed: int = 0) -> np.ndarray:
    """Dark ink on textured, unevenly lit paper, off centre with a wide margin (grayscale 0-255)."""
    rng = np.random.default_rng(seed)
    digit = np.kron(mask, np.ones((scale, scale)))
    height, width = digit.shape[0] * 2, digit.shape[1] * 2
    ink = np.zeros((height, width))
    ink[20 : 20 + digit.shape[0], 30 : 30 + digit.shape[1]] = digit
    gradient = np.linspace(-40, 40, width)[None, :]
    paper = 200 + gradient + rng.normal(0, 8, (height, width))
    return (paper * (1 - 0.7 * ink)).clip(0, 255).astype(np.float32)


def centre_of_mass(image: torch.Tensor) -> tuple[float, float]:
    rows, cols = torch.arange(28.0), torch.arange(28.0)
    mass = image.sum()
    return float((image.sum(1) * rows).sum() / mass), float((image.sum(0) * cols).sum() / mass)


def test_mnist_like_crops_scales_to_20px_and_centres_by_mass() -> None:
    result = mnist_like(photo_of(seven()))
    assert result.shape == (28, 28) and result.min() >= 0 and result.max() <= 1
    rows = (result > 0.1).any(dim=1).nonzero().flatten()
    cols = (result > 0.1).any(dim=0).nonzero().flatten()
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    assert max(height, width) in (19, 20, 21)
    row, col = centre_of_mass(result)
    assert abs(row - 13.5) <= 1 and abs(col - 13.5) <= 1
    # The paper (texture and gradient) is gone: the border is black.
    assert result[0].max() == 0 and result[:, 0].max() == 0 and result[:, -1].max() == 0


def test_polarity_is_detected_white_on_black_gives_the_same_digit() -> None:
    dark_on_light = photo_of(seven())
    light_on_dark = 255 - dark_on_light
    a, b = mnist_like(dark_on_light), mnist_like(light_on_dark)
    assert torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1] > 0.9


def test_mnist_like_ignores_a_far_speck() -> None:
    clean = photo_of(seven())
    specked = clean.copy()
    specked[-6:-3, -6:-3] = 0  # a dark dot in the far corner
    a, b = mnist_like(clean), mnist_like(specked)
    assert torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1] > 0.9


def zero(size: int, pen: int, dashed: bool = False) -> np.ndarray:
    """A '0' drawn with a pen `pen` px wide, dark on light paper, filling most of the image;
    `dashed`: the stroke broken into dots, as a ballpoint skips."""
    canvas = Image.new("L", (size, size), 0)
    box = (0.25 * size, 0.1 * size, 0.75 * size, 0.9 * size)
    if dashed:
        for start in range(0, 360, 20):
            ImageDraw.Draw(canvas).arc(box, start, start + 12, fill=255, width=pen)
    else:
        ImageDraw.Draw(canvas).ellipse(box, outline=255, width=pen)
    return 230 - 180 * np.asarray(canvas, np.float32) / 255


def stroke_at_80px(field: torch.Tensor) -> float:
    """The stroke width of a 28x28 result at the scale MNIST's widths were measured at."""
    rows, cols = (field > 0.1).any(dim=1).nonzero(), (field > 0.1).any(dim=0).nonzero()
    digit = field[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    scale = STROKE_BOX / max(digit.shape)
    size = (round(digit.shape[0] * scale), round(digit.shape[1] * scale))
    digit = torch.nn.functional.interpolate(digit[None, None], size=size, mode="bilinear")[0, 0]
    return stroke_width(digit > 0.5)


def strokes(field: torch.Tensor) -> int:
    return ndimage.label((field > 0.5).numpy(), structure=np.ones((3, 3)))[1]


@pytest.mark.parametrize(("size", "pen"), [(28, 1), (28, 6), (120, 1), (120, 3), (120, 24)])
def test_strokes_of_any_pen_come_out_as_wide_as_mnists(size: int, pen: int) -> None:
    low, high = MNIST_STROKE_RANGE
    result = mnist_like(zero(size, pen))
    assert low <= stroke_at_80px(result) <= high
    assert strokes(result) == 1  # thinning a marker did not break the loop


def test_the_first_recipe_leaves_a_thin_pen_thin() -> None:
    assert stroke_at_80px(mnist_v1(zero(120, 1))) < MNIST_STROKE_RANGE[0]


def test_a_stroke_broken_into_dots_is_reconnected() -> None:
    dotted = zero(120, 2, dashed=True)
    assert strokes(mnist_v1(dotted)) != 1
    assert strokes(mnist_like(dotted)) == 1


def test_a_tight_16px_bold_digit_keeps_its_ink_on_textured_paper() -> None:
    canvas = Image.new("L", (16, 16), 0)
    ImageDraw.Draw(canvas).ellipse((1, 0, 14, 15), outline=255, width=4)  # touches the edges
    ink = np.asarray(canvas, np.float32) / 255
    paper = 200 + np.random.default_rng(0).normal(0, 12, (16, 16)) + np.linspace(-20, 20, 16)
    result = mnist_like((paper * (1 - 0.7 * ink)).astype(np.float32))
    low, high = MNIST_STROKE_RANGE
    assert strokes(result) == 1 and low <= stroke_at_80px(result) <= high
    assert result[12:16, 12:16].max() < 0.1  # the hole stays open
    # Nothing eaten by the background: the same as from clean paper (which has none to remove).
    clean = mnist_like((200 * (1 - 0.7 * ink)).astype(np.float32))
    assert torch.corrcoef(torch.stack([result.flatten(), clean.flatten()]))[0, 1] > 0.9


def test_naive_is_the_tutorial_invert_and_resize() -> None:
    result = naive(photo_of(seven()))
    assert result.shape == (28, 28)
    # It squashes the whole photo: the digit stays off centre and the paper is not black.
    assert result[-1].mean() > 0.05


def test_blank_images_are_reported_as_blank() -> None:
    rng = np.random.default_rng(1)
    paper = (200 + rng.normal(0, 6, (300, 300))).astype(np.float32)
    with pytest.raises(BlankImage):
        mnist_like(paper)


def test_load_grayscale_handles_alpha_palette_16bit_and_exif(tmp_path: Path) -> None:
    ink = (seven(56) * 255).astype(np.uint8)
    rgba = np.zeros((56, 56, 4), np.uint8)
    rgba[..., 3] = ink  # black ink drawn only through alpha on a transparent sheet
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    gray = load_grayscale(tmp_path / "alpha.png")
    assert gray[0, 0] == 255 and gray.min() < 50  # composited on white

    Image.fromarray(255 - ink).convert("P").save(tmp_path / "palette.gif")
    assert load_grayscale(tmp_path / "palette.gif").shape == (56, 56)

    deep = ((255 - ink).astype(np.uint16) * 257).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    assert load_grayscale(tmp_path / "deep.png").max() == pytest.approx(255, abs=1)

    wide = Image.fromarray(np.full((20, 60), 255, np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    wide.save(tmp_path / "rotated.jpg", exif=exif)
    assert load_grayscale(tmp_path / "rotated.jpg").shape == (60, 20)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("text.png", b"hello, not an image", "not an image"),
        ("empty.jpg", b"", "not an image"),
        ("truncated.png", None, "truncated"),
        ("bomb.png", None, "too large"),
    ],
)
def test_unreadable_files_raise_one_line_naming_the_file(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if name == "truncated.png":
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8)).save(path)
        path.write_bytes(path.read_bytes()[:-400])
    elif name == "bomb.png":
        Image.new("1", (10_000, 10_000)).save(path)  # 100 megapixels in a few kB
    else:
        path.write_bytes(content)
    with pytest.raises(DigitsError) as error:
        load_grayscale(path)
    assert str(path) in str(error.value) and message in str(error.value)
    assert "\n" not in str(error.value)


def test_predict_cli_reports_each_image_and_fails_for_bad_ones(
    trained_run: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    good = photo_of(seven(), scale=4)
    for suffix in ("png", "jpg", "bmp", "tiff", "webp"):
        Image.fromarray(good.astype(np.uint8)).convert("RGB").save(folder / f"seven.{suffix}")
    Image.new("L", (80, 80), 230).save(folder / "blank.png")
    (folder / "broken.png").write_bytes(b"definitely not a png")
    preprocessed = tmp_path / "seen"
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    result = run_cli(
        "digits.predict",
        f"ckpt_path={ckpt}",
        f"images=[{folder},{tmp_path / 'missing.png'}]",
        "output=json",
        f"save_preprocessed={preprocessed}",
        cwd=tmp_path,
        data_root=None,
    )
    assert result.returncode == 2  # a file the user named is no image: a user's mistake
    records = {Path(r["file"]).name: r for r in map(json.loads, result.stdout.splitlines())}
    assert len(records) == 8
    for suffix in ("png", "jpg", "bmp", "tiff", "webp"):
        record = records[f"seven.{suffix}"]
        assert 0 <= record["digit"] <= 9 and 0 < record["confidence"] <= 1
        probabilities = [t["probability"] for t in record["top"]]
        assert len(probabilities) == 3 and probabilities == sorted(probabilities, reverse=True)
        assert record["top"][0]["digit"] == record["digit"]
    assert records["blank.png"]["blank"] is True and records["blank.png"]["digit"] is None
    assert "not an image" in records["broken.png"]["error"]
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 2 and "Traceback" not in result.stderr
    assert any("broken.png" in line for line in errors)
    assert any("missing.png" in line for line in errors)
    saved = Image.open(preprocessed / "seven.png")
    assert saved.size == (28, 28)


def test_predict_table_output(trained_run: Path, tmp_path: Path) -> None:
    image = tmp_path / "seven.png"
    Image.fromarray(photo_of(seven(), scale=4).astype(np.uint8)).save(image)
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    result = run_cli(
        "digits.predict",
        f"ckpt_path={ckpt}",
        f"images={image}",
        "preprocess=naive",
        cwd=tmp_path,
        data_root=None,
    )
    assert result.returncode == 0, result.stderr
    assert "seven.png" in result.stdout and "%" in result.stdout


def test_predictor_runs_lightnings_predict_loop(
    trained_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaders = []
    predict_loop = L.Trainer.predict

    def spy(self: L.Trainer, model, dataloaders=None, **kwargs):
        loaders.append(dataloaders)
        return predict_loop(self, model, dataloaders=dataloaders, **kwargs)

    monkeypatch.setattr(L.Trainer, "predict", spy)
    predictor = Predictor(RunDir(trained_run).best_checkpoint())
    images = torch.rand(5, 28, 28)
    probabilities = predictor.probabilities(images, batch_size=2)
    (loader,) = loaders
    assert len(loader) == 3  # batches of 2, 2 and 1
    with torch.no_grad():
        model = predictor.model.model
        expected = (model(images.unsqueeze(1)) / model.temperature).softmax(dim=1)
    assert torch.allclose(probabilities, expected, atol=1e-6)


def test_image_patterns_are_expanded_as_no_shell_does_inside_a_hydra_list(tmp_path: Path) -> None:
    for name in ("b.png", "a.png", "c.jpg"):
        (tmp_path / name).write_bytes(b"")
    assert image_files([str(tmp_path / "*.png")]) == [tmp_path / "a.png", tmp_path / "b.png"]
    assert image_files([str(tmp_path / "*.gif")]) == [tmp_path / "*.gif"]  # reported: no such file


def test_below_min_confidence_the_answer_is_unsure_with_the_top_two(
    trained_run: Path, tmp_path: Path
) -> None:
    image = tmp_path / "seven.png"
    Image.fromarray(photo_of(seven(), scale=4).astype(np.uint8)).save(image)
    predictor = Predictor(RunDir(trained_run).best_checkpoint())
    (sure,) = predictor([image], "mnist", top_k=1, min_confidence=0.0)
    (unsure,) = predictor([image], "mnist", top_k=1, min_confidence=1.0)
    assert not sure.unsure and sure.digit is not None and len(sure.top) == 1
    assert unsure.unsure and unsure.digit is None
    assert [d for d, _ in unsure.top][:1] == [sure.digit] and len(unsure.top) == 2
    assert unsure.record()["unsure"] is True and unsure.record()["digit"] is None
    assert unsure.confidence == pytest.approx(sure.confidence)


def test_a_clean_scan_is_laid_out_by_mnist_s_rule_alone_whatever_its_polarity() -> None:
    digit = torch.from_numpy(seven(16))  # a 16x16 scan, as USPS's
    expected = mnist_rule(digit)
    assert torch.allclose(scan(255 - 255 * digit.numpy()), expected, atol=1e-5)  # dark on light
    assert torch.allclose(scan(255 * digit.numpy()), expected, atol=1e-5)  # light on dark
    box = expected > 0
    assert max(int(box.any(dim=1).sum()), int(box.any(dim=0).sum())) in (20, 21)
    with pytest.raises(BlankImage):
        scan(np.full((16, 16), 200, np.float32))


def test_reading_an_onnx_file_leaves_the_onnx_package_unimported() -> None:
    """Issue 46: onnxruntime reads an export's metadata; the onnx package (a second to import)
    is for exporting only."""
    code = (
        "import sys, digits.predict, digits.serve, digits.exported.onnx_model, "
        "digits.exported.strip_reader; print('onnx' in sys.modules)"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert shown.stdout.strip() == "False", shown.stderr[-2000:]
