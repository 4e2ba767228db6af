"""The sequence reader: number strips (data=numbers), CTC decoding, the CRNN trained by digits.train
and read back from its checkpoint alone."""

from __future__ import annotations

import io
import json
import os
import sys
import urllib.request
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from browser import CHROMIUM, launch  # tools/browser.py
from fastapi.testclient import TestClient
from PIL import Image
from servers import free_port, serving  # tools/servers.py

from conftest import run_cli, run_entry_point
from digits.data.numbers import StripSet, StripStyle, compose
from digits.errors import DigitsError
from digits.exported.formats import onnx_model_of
from digits.exported.strip_reader import OnnxStripReader
from digits.inference.predictor import Predictor, StripModel
from digits.models.checkpoint import load_classifier
from digits.models.crnn import BLANK, CRNN
from digits.models.ctc import beam, greedy
from digits.models.number_reader import NumberReader
from digits.reading.segment import rows_in
from digits.reading.strips import (
    INK_HEIGHT,
    MARGIN,
    MAX_STRIP_WIDTH,
    STRIP_HEIGHT,
    StripTooWide,
    lay_out,
)
from digits.reading.strokes import erode
from digits.runs.per_image import PerImageResults
from digits.serving.app import create_app
from digits.serving.options import ServeOptions

STYLE = StripStyle(1, 5, (-0.3, 0.6), 0.25, (0.8, 1.2), 15, (-1, 1))
# data=numbers on the synthetic MNIST of conftest: small splits, a few strips.
NUMBERS = [
    "model=crnn",
    "data=numbers",
    "data.source.val_size=200",
    "data.source.download=false",
    "data.max_digits=4",
    "data.train_strips=96",
    "data.val_strips=32",
    "data.test_strips=40",
    "data.batch_size=16",
    "model.channels=[8,8,8]",
    "model.hidden=16",
    "model.layers=1",
    "trainer.accelerator=cpu",
    "trainer.num_sanity_val_steps=0",
    "trainer.log_every_n_steps=1",
    "trainer.max_epochs=2",
]


def posteriors(frames: list[list[tuple[int, float]]]) -> torch.Tensor:
    """(1, T, 11) frame posteriors: each frame's likeliest class with its probability, the rest
    spread evenly over the other classes."""
    table = torch.zeros(1, len(frames), BLANK + 1)
    for t, ((label, p),) in enumerate(frames):
        table[0, t] = (1 - p) / BLANK
        table[0, t, label] = p
    return table


def test_greedy_merges_repeats_drops_blanks_and_keeps_a_blank_separated_double() -> None:
    frames = [[(3, 0.9)], [(3, 0.95)], [(BLANK, 0.99)], [(3, 0.7)], [(BLANK, 0.9)], [(5, 0.6)]]
    ((digits, confidences, at),) = greedy(posteriors(frames), torch.tensor([6]))
    assert digits == [3, 3, 5]
    assert confidences == pytest.approx([0.95, 0.7, 0.6])
    assert at == [1, 3, 5]  # each digit's likeliest frame
    # Frames past the strip's own width (padding in a batch) are not read.
    assert greedy(posteriors(frames), torch.tensor([2]))[0][0] == [3]


def test_beam_search_finds_the_string_whose_alignments_sum_highest() -> None:
    # Greedy takes the likeliest class per frame: blank, blank (reading nothing); but "7" spread
    # over either frame (0.4 + 0.4 of its alignments, minus their overlap) beats "" (0.36).
    table = torch.tensor([[0.4, 0.6], [0.4, 0.6]])
    probabilities = torch.zeros(2, BLANK + 1)
    probabilities[:, 7], probabilities[:, BLANK] = table[:, 0], table[:, 1]
    assert greedy(probabilities[None], torch.tensor([2]))[0][0] == []
    digits, confidences, at = beam(probabilities, width=4)
    assert digits == [7]
    assert confidences == pytest.approx([0.4]) and at in ([0], [1])


def test_a_strip_is_laid_out_by_the_contract_and_a_too_wide_one_is_refused() -> None:
    ink = torch.zeros(40, 300)
    ink[5:35, 10:70] = 1.0  # 30 px high, 60 wide: 48 wide once 24 high
    strip = lay_out(ink)
    assert strip.shape == (STRIP_HEIGHT, 48 + 2 * MARGIN)
    rows = (strip.amax(dim=1) > 0.5).nonzero().flatten()
    assert (rows[-1] - rows[0] + 1).item() == INK_HEIGHT
    assert strip[:, :MARGIN].max() == 0 and strip[:, -MARGIN:].max() == 0
    with pytest.raises(StripTooWide, match=f"over its limit of {MAX_STRIP_WIDTH}"):
        lay_out(torch.ones(2, 200))  # a rule: 2,400 px wide at 24 high


def test_strips_are_a_function_of_their_index_and_carry_their_digits() -> None:
    images = torch.zeros(10, 28, 28, dtype=torch.uint8)
    for digit in range(10):
        images[digit, 4:24, 10 + digit % 5 : 14 + digit % 5] = 255
    strips = StripSet(images, torch.arange(10), 20, STYLE, seed=3)
    batch, labels, widths = strips.__getitems__([0, 1, 2])
    again, labels_again, _ = StripSet(images, torch.arange(10), 20, STYLE, 3).__getitems__([2])
    assert torch.equal(again[0, :, :, : widths[2]], batch[2, :, :, : widths[2]])
    assert torch.equal(labels_again[0], labels[2])
    assert batch.shape == (3, 1, STRIP_HEIGHT, int(widths.max()))
    assert labels.shape == (3, STYLE.max_digits)
    for row in labels:
        length = int((row >= 0).sum())
        assert 1 <= length <= STYLE.max_digits and (row[length:] == -1).all()
    other = StripSet(images, torch.arange(10), 20, STYLE, seed=4).__getitems__([2])[0]
    assert other.shape != again.shape or not torch.equal(other, again)


def test_a_thinner_pen_writes_thinner_strokes_as_dark() -> None:
    images = torch.zeros(1, 28, 28, dtype=torch.uint8)
    images[0, 4:24, 12:15] = 255  # a stroke 3 px wide, anti-aliased once laid out
    plain = compose(images, StripStyle.of(vars(STYLE), stroke=(0, 0)), torch.Generator())
    thin = compose(images, StripStyle.of(vars(STYLE), stroke=(-1, -1)), torch.Generator())
    assert (thin > 0.5).sum() < 0.75 * (plain > 0.5).sum()  # thinner
    assert float(thin.max()) == pytest.approx(float(plain.max()), abs=0.02)  # a pen, not a fade
    assert erode(plain, 1).max() < 0.9 * plain.max()  # which erosion alone is not


def test_more_digits_make_wider_strips() -> None:
    digit = torch.zeros(1, 28, 28, dtype=torch.uint8)
    digit[0, 4:24, 12:16] = 255
    plain = StripStyle(1, 8, (0.2, 0.2), 0.0, (1.0, 1.0), 0.0, (0, 0))
    widths = [
        compose(digit.repeat(n, 1, 1), plain, torch.Generator().manual_seed(0)).shape[1]
        for n in (1, 2, 4)
    ]
    assert widths[0] < widths[1] < widths[2]


def test_the_crnn_gives_a_frame_per_four_pixels() -> None:
    network = CRNN(channels=[8, 8, 8], hidden=8, layers=1, dropout=0.0).eval()
    scores = network(torch.zeros(2, 1, STRIP_HEIGHT, 61))
    assert scores.shape == (2, 15, BLANK + 1)
    assert CRNN.frames(torch.tensor([61, 8])).tolist() == [15, 2]


@pytest.fixture(scope="module")
def numbers_run(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny crnn trained 2 epochs on strips of the synthetic digits (its run directory)."""
    cwd = tmp_path_factory.mktemp("numbers")
    result = run_cli(
        "digits.train", *NUMBERS, "hydra.run.dir=outputs/run", cwd=cwd, data_root=data_root
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd / "outputs" / "run"


def test_digits_train_trains_a_crnn_on_number_strips_and_tests_whole_numbers(
    numbers_run: Path,
) -> None:
    metrics = json.loads((numbers_run / "metrics.json").read_text())
    assert metrics["test/images"] == 40 and metrics["val/images"] == 32
    assert metrics["test/cer"] >= 0 and 0 <= metrics["test/acc"] <= 1
    interval = metrics["test/acc_interval"]
    assert interval["low"] <= metrics["test/acc"] <= interval["high"]
    results = PerImageResults.read(numbers_run / "test_predictions.csv")
    assert results.numbers and len(results.labels) == 40
    assert all(len(label) in range(1, 5) and label.isdigit() for label in results.labels)
    assert results.correct.sum() == metrics["test/correct"]
    assert results.correct.mean() == pytest.approx(metrics["test/acc"])
    manifest = json.loads((numbers_run / "manifest.json").read_text())
    assert manifest["settings"]["choices.module"] == "sequence"


def test_a_crnn_checkpoint_alone_reads_strips_as_it_did_in_training(
    numbers_run: Path, data_root: Path
) -> None:
    metrics = json.loads((numbers_run / "metrics.json").read_text())
    reader = load_classifier(metrics["best_checkpoint"])  # weights_only: primitives only
    assert isinstance(reader, NumberReader) and not reader.training
    images = torch.zeros(4, 28, 28, dtype=torch.uint8)
    strips = StripSet(images, torch.arange(4), 3, STYLE, seed=0)
    batch, _, widths = strips.__getitems__([0, 1, 2])
    readings = reader.read(batch, widths)
    assert len(readings) == 3
    for digits, confidences, frames in readings:
        assert len(digits) == len(confidences) == len(frames)
        assert all(0 <= c <= 1 for c in confidences)
    # One strip alone reads as it does in a batch of narrower and wider ones.
    alone = reader.read(batch[1:2, :, :, : widths[1]], widths[1:2])
    assert alone[0][0] == readings[1][0]


def written_number(path: Path, digits: list[int], width_per_digit: int = 24) -> None:
    """A number written dark on light paper: each digit a bar at its own height (the synthetic
    digits' look), side by side."""
    image = np.full((60, 20 + width_per_digit * len(digits)), 230, np.uint8)
    for i, digit in enumerate(digits):
        top = 12 + 2 * digit
        image[top : top + 10, 12 + i * width_per_digit : 28 + i * width_per_digit] = 20
    Image.fromarray(image).save(path)


def test_predict_reads_rows_whole_with_a_number_reader(
    numbers_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    ckpt = numbers_run / "checkpoints" / "last.ckpt"
    written_number(tmp_path / "n.png", [3, 1, 4])
    Image.new("L", (40, 40), 255).save(tmp_path / "blank.png")
    args = [f"ckpt_path={ckpt}", "mode=number", "reader=sequence", "output=json"]
    status = run_entry_point("predict", [*args, f"images=[{tmp_path}]"], monkeypatch)
    assert status == 0
    records = {
        Path(r["file"]).name: r for r in map(json.loads, capsys.readouterr().out.split("\n")[:-1])
    }
    assert records["blank.png"]["blank"] is True
    number = records["n.png"]
    assert number["text"] == "".join(str(d["digit"]) for d in number["digits"])  # one row
    for d in number["digits"]:  # each digit boxed inside the row, with its confidence
        assert 0 <= d["box"]["left"] < d["box"]["right"] <= 92 and d["row"] == 0
        assert 0 <= d["confidence"] <= 1


def test_a_number_readers_checkpoint_and_too_wide_rows_are_refused_in_one_line(
    numbers_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    ckpt = numbers_run / "checkpoints" / "last.ckpt"
    written_number(tmp_path / "n.png", [3, 1, 4])
    assert run_entry_point("predict", [f"ckpt_path={ckpt}", f"images=[{tmp_path / 'n.png'}]"],
                           monkeypatch) == 2  # fmt: skip
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "a number reader's checkpoint (CRNN), which reads whole rows" in line
    rule = np.full((200, 2000), 230, np.uint8)
    rule[90:110, 20:1980] = 20  # a rule 98 times as wide as it is high
    Image.fromarray(rule).save(tmp_path / "rule.png")
    args = [
        f"ckpt_path={ckpt}",
        "mode=number",
        "reader=sequence",
        f"images=[{tmp_path / 'rule.png'}]",
    ]
    assert run_entry_point("predict", args, monkeypatch) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "rule.png" in line and f"over its limit of {MAX_STRIP_WIDTH}" in line


def test_rows_are_found_top_to_bottom_each_with_its_own_ink_only() -> None:
    page = np.full((120, 200), 235, np.uint8)
    page[10:40, 20:30] = page[10:40, 50:60] = 30  # row one: two strokes
    page[70:100, 30:40] = page[70:100, 60:70] = page[72:98, 90:100] = 30  # row two: three
    rows = rows_in(page)
    assert [row.box.top < row.box.bottom for row in rows] == [True, True]
    assert rows[0].box.bottom <= rows[1].box.top  # top to bottom
    assert abs(rows[0].box.left - 20) <= 3 and abs(rows[1].box.right - 100) <= 3
    laid_out = [lay_out(row.ink) for row in rows]
    assert laid_out[1].shape[1] > laid_out[0].shape[1]  # three strokes are wider than two
    assert all(strip.shape[0] == STRIP_HEIGHT for strip in laid_out)


@pytest.mark.parametrize(
    ("command", "args", "expected"),
    [
        (
            "evaluate",
            ["run={run}"],
            "digits.evaluate takes a digit classifier's; its run tested it",
        ),
        (
            "export",
            ["run={run}", "format=torchscript"],
            "exports as ONNX only (format=onnx)",
        ),
        (
            "adapt",
            ["ckpt_path={run}", "data.root={run}"],
            "digits.adapt takes a digit classifier's",
        ),
    ],
)
def test_commands_for_digit_classifiers_refuse_a_number_reader_in_one_line(
    numbers_run: Path,
    command: str,
    args: list[str],
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DIGITS_OUTPUT_DIR", str(tmp_path / "outputs"))
    given = [arg.replace("{run}", str(numbers_run)) for arg in args]
    assert run_entry_point(command, given, monkeypatch) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "a number reader's checkpoint" in line and expected in line
    assert not any(tmp_path.iterdir())  # nothing written


def test_an_onnx_export_reads_strips_as_its_checkpoint_does_and_predict_takes_it(
    numbers_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    onnx_file = tmp_path / "reader.onnx"
    args = [f"run={numbers_run}", "checkpoint=last", f"output={onnx_file}"]
    assert run_entry_point("export", args, monkeypatch) == 0
    exported = OnnxStripReader(onnx_file)
    assert exported.metadata["reads"] == "numbers" and exported.metadata["model"] == "CRNN"
    tampered = onnx.load(str(onnx_file))  # a file's metadata must not make a strip cost minutes
    next(p for p in tampered.metadata_props if p.key == "beam_width").value = str(10**9)
    onnx.save(tampered, str(tmp_path / "tampered.onnx"))
    with pytest.raises(DigitsError, match=r"beam_width=1000000000; .* a beam of 1 to 64"):
        OnnxStripReader(tmp_path / "tampered.onnx")
    reader = StripModel(load_classifier(numbers_run / "checkpoints" / "last.ckpt"))
    images = torch.zeros(10, 28, 28, dtype=torch.uint8)
    for digit in range(10):
        images[digit, 4 + digit : 14 + digit, 8:20] = 255
    strips = StripSet(images, torch.arange(10), 12, STYLE, seed=5)
    laid_out = [strips.strip(index)[0] for index in range(12)]  # of several widths
    for onnx_reading, reading in zip(exported.read(laid_out), reader.read(laid_out), strict=True):
        assert onnx_reading.digits == reading.digits and onnx_reading.frames == reading.frames
        assert onnx_reading.confidences == pytest.approx(reading.confidences, abs=1e-3)
    written_number(tmp_path / "n.png", [2, 7])
    capsys.readouterr()
    read_with = [f"images=[{tmp_path / 'n.png'}]", "mode=number", "reader=sequence", "output=json"]
    assert run_entry_point("predict", [f"ckpt_path={onnx_file}", *read_with], monkeypatch) == 0
    from_onnx = json.loads(capsys.readouterr().out)
    ckpt = numbers_run / "checkpoints" / "last.ckpt"
    assert run_entry_point("predict", [f"ckpt_path={ckpt}", *read_with], monkeypatch) == 0
    assert json.loads(capsys.readouterr().out)["text"] == from_onnx["text"]


def test_a_number_readers_per_image_results_keep_leading_zeros_and_empty_readings(
    tmp_path: Path,
) -> None:
    labels = np.array(["007", "12", "0"], dtype=object)
    read = np.array(["07", "12", ""], dtype=object)
    results = PerImageResults(labels, read, np.array([0.9, 0.99, 0.0]))
    results.write(tmp_path / "test_predictions.csv")
    again = PerImageResults.read(tmp_path / "test_predictions.csv")
    assert list(again.labels) == ["007", "12", "0"] and list(again.predicted) == ["07", "12", ""]
    assert again.correct.tolist() == [False, True, False]
    assert again.summary()["test/correct"] == 1


SERVE_OPTIONS = ServeOptions(ckpt_path="", host="127.0.0.1", port=8000, preprocess="mnist",
                             top_k=3, min_confidence=0.5, max_upload_mb=1, max_batch_images=4,
                             batch_images=32, batch_wait_ms=2, read_timeout_s=10,
                             body_timeout_s=5, header_timeout_s=10, keep_alive_s=75,
                             cors_origins=[], root_path="", access_log=False)  # fmt: skip


def test_digits_serve_reads_numbers_with_a_number_reader_as_predict_does(
    numbers_run: Path, tmp_path: Path
) -> None:
    ckpt = numbers_run / "checkpoints" / "last.ckpt"
    model = onnx_model_of(ckpt)  # what digits.serve runs: the checkpoint exported in memory
    assert isinstance(model, OnnxStripReader)
    written_number(tmp_path / "n.png", [3, 1, 4])
    written_number(tmp_path / "m.png", [0, 9])
    expected = Predictor(model, reader="sequence")(
        [tmp_path / "n.png", tmp_path / "m.png"], "mnist", 3, min_confidence=0.5, mode="number"
    )
    rule = np.full((200, 2000), 230, np.uint8)
    rule[90:110, 20:1980] = 20
    app = create_app(lambda: model, str(ckpt), SERVE_OPTIONS)
    with TestClient(app) as client:
        assert app.state.served.wait(60)
        described = client.get("/model").json()
        assert described["reads"] == "numbers" and described["name"] == "CRNN"
        for mode in ("", "?mode=number"):  # a number reader's server reads numbers unasked
            answer = client.post(f"/predict{mode}", content=(tmp_path / "n.png").read_bytes())
            assert answer.status_code == 200
            assert answer.json() == expected[0].record() | {"file": "upload"}
        files = [("images", (f"{name}.png", (tmp_path / f"{name}.png").read_bytes()))
                 for name in ("n", "m")]  # fmt: skip
        batch = client.post("/predict/batch", files=files).json()["results"]
        assert batch == [e.record() | {"file": f"{e.path.name}"} for e in expected]
        for mode in ("digit", "auto"):
            refused = client.post(f"/predict?mode={mode}", content=files[0][1][1])
            assert refused.status_code == 422
            assert refused.json() == {
                "error": f"mode={mode}: this server's model is a number reader, which reads rows "
                "of digits whole: use mode=number"
            }
        blank = client.post("/predict", content=png(Image.new("L", (40, 40), 255))).json()
        assert blank["blank"] is True and blank["digits"] == []
        too_wide = client.post("/predict", content=png(Image.fromarray(rule)))
        assert too_wide.status_code == 422
        assert f"over its limit of {MAX_STRIP_WIDTH}" in too_wide.json()["error"]
        assert client.get("/ready").status_code == 200  # still answering


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.skipif(not Path(CHROMIUM).is_file() and not os.environ.get("CI"),
                    reason="no chromium (apt-get install chromium)")  # fmt: skip
def test_the_page_of_a_number_readers_server_reads_numbers_only(
    numbers_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import sync_playwright

    onnx_file = tmp_path / "reader.onnx"
    args = [f"run={numbers_run}", "checkpoint=last", f"output={onnx_file}"]
    assert run_entry_point("export", args, monkeypatch) == 0
    written_number(tmp_path / "n.png", [5, 2, 8])
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "digits.serve", f"ckpt_path={onnx_file}", f"port={port}"]
    with serving(command, f"{url}/ready", cwd=tmp_path), sync_playwright() as playwright:
        expected = json.loads(
            urllib.request.urlopen(
                urllib.request.Request(
                    f"{url}/predict",
                    data=(tmp_path / "n.png").read_bytes(),
                    headers={"Content-Type": "image/png"},
                )
            ).read()
        )
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 900, "height": 640})
        page.goto(url)
        page.wait_for_function("document.querySelector('input[value=digit]').disabled")
        assert page.locator("input[value=number]").is_checked()
        assert page.locator("input[value=auto]").is_disabled()
        assert "each row is read whole" in page.locator(".hint").text_content()
        page.set_input_files("#photo", tmp_path / "n.png")
        page.wait_for_function("document.body.dataset.state === 'read'", timeout=30_000)
        assert page.locator("#error").text_content() == ""
        assert page.locator("#digit").text_content() == (expected["text"] or "?")
        assert page.locator("#readings li").count() == len(expected["digits"])
        page.screenshot(path=tmp_path / "page-number-reader.png")
        browser.close()
