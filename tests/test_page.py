"""The pages of digits in a real browser: Debian's headless Chromium, driven by Playwright, with a
model trained on real MNIST. The page of `digits.serve` (the real server on 127.0.0.1): mouse strokes
drawn on the canvas, and uploaded photos, must come back as the right digit or number, a number with
each digit's box drawn over the canvas and its text ready to copy. The page that needs no server
(`digits.export format=web`, served by Python's static file server): the browser's probabilities
must be onnxruntime-python's."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from browser import CHROMIUM, launch  # tools/browser.py
from PIL import Image
from servers import free_port, serving  # tools/servers.py

from conftest import REAL_DATA
from digits.data.idx import load_mnist
from digits.exported.onnx_model import OnnxModel
from digits.reading.preprocess import drawing
from digits.runs import RunDir

if not Path(CHROMIUM).is_file() and os.environ.get("CI"):
    raise RuntimeError(f"{CHROMIUM} missing: .ci/run installs Debian's chromium for this test")
pytestmark = [
    pytest.mark.real_data,
    pytest.mark.skipif(
        not Path(CHROMIUM).is_file(), reason="no chromium (apt-get install chromium)"
    ),
]

# ONNX Runtime Web as `make install` puts it (npm ci); .ci/run does.
WEB_RUNTIME = Path(__file__).parents[1] / "node_modules" / "onnxruntime-web" / "dist"
if not WEB_RUNTIME.is_dir() and os.environ.get("CI"):
    raise RuntimeError(f"{WEB_RUNTIME} missing: `make install` runs npm ci for this test")

Stroke = list[tuple[float, float]]  # points as fractions of a square as tall as the canvas
ONE: list[Stroke] = [[(0.5, 0.15), (0.5, 0.85)]]
SEVEN: list[Stroke] = [[(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]]
ZERO: list[Stroke] = [
    [(0.5 + 0.2 * math.sin(a / 24 * 2 * math.pi), 0.5 - 0.32 * math.cos(a / 24 * 2 * math.pi))
     for a in range(25)]
]  # fmt: skip
FOUR: list[Stroke] = [[(0.6, 0.85), (0.6, 0.15), (0.2, 0.6), (0.8, 0.6)]]
TWO: list[Stroke] = [[(0.25, 0.3), (0.5, 0.15), (0.75, 0.3), (0.25, 0.85), (0.8, 0.85)]]


@pytest.fixture(scope="module")
def server(real_mnist_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m digits.serve` on 127.0.0.1 with the real-MNIST model; its URL."""
    port = free_port()
    ckpt = RunDir(real_mnist_run).best_checkpoint()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "digits.serve", f"ckpt_path={ckpt}", f"port={port}"]
    with serving(command, f"{url}/ready", cwd=tmp_path_factory.mktemp("serve")):
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


def draw(page, strokes: list[Stroke], centre: float = 0.5) -> None:
    """Strokes drawn with the mouse in a square as tall as the canvas, its middle at `centre` of
    the canvas's width."""
    box = page.locator("#pad").bounding_box()
    side = box["height"]
    left = box["x"] + centre * box["width"] - side / 2

    def move(x: float, y: float, steps: int = 1) -> None:
        page.mouse.move(left + x * side, box["y"] + y * side, steps=steps)

    for stroke in strokes:
        (x, y), *rest = stroke
        move(x, y)
        page.mouse.down()
        for x, y in rest:
            move(x, y, steps=6)
        page.mouse.up()


def answer(page) -> str:
    """What the page reads once its answer to the last drawing or photo has come."""
    page.wait_for_function("document.body.dataset.state === 'read'", timeout=30_000)
    return page.locator("#digit").text_content()


def overlay_inked(page) -> bool:
    """Whether anything (the digits' boxes) is drawn on the canvas over the drawing."""
    return page.evaluate(
        """() => { const c = document.getElementById('boxes');
        return c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some((v) => v > 0); }"""
    )


@pytest.mark.slow
@pytest.mark.parametrize(("size", "name"), [((900, 640), "desktop"), ((390, 844), "phone")])
def test_drawn_digits_are_recognised(server: str, browser, size, name, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    page.goto(server)
    for strokes, digit in ((ONE, "1"), (SEVEN, "7"), (ZERO, "0")):
        page.click("#clear")
        draw(page, strokes)
        assert answer(page) == digit  # mode=auto: one digit is answered as a digit
        assert page.locator("#bars li").count() == 10
        assert page.locator("#seen").get_attribute("src").startswith("data:image/png;base64,")
        assert page.locator("#readings").is_hidden() and not overlay_inked(page)
    page.screenshot(path=tmp_path / f"page-{name}.png", full_page=True)
    assert page.locator("#error").text_content() == ""


def test_an_uploaded_photo_is_recognised(server: str, browser, tmp_path: Path) -> None:
    images, labels = load_mnist(REAL_DATA, train=False)
    photo = tmp_path / "photo.png"
    Image.fromarray(255 - images[1].numpy()).resize((224, 224)).save(photo)  # black on white
    page = browser.new_page()
    page.goto(server)
    page.set_input_files("#photo", photo)
    assert answer(page) == str(int(labels[1]))
    page.screenshot(path=tmp_path / "page-upload.png", full_page=True)
    page.click("#clear")
    (tmp_path / "notes.txt").write_text("not an image")
    page.set_input_files("#photo", tmp_path / "notes.txt")
    page.wait_for_function("document.getElementById('error').textContent !== ''", timeout=30_000)
    assert "not an image" in page.locator("#error").text_content()
    assert page.locator("#seen").is_hidden()


def test_a_written_number_is_read_digit_by_digit(server: str, browser, tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 900, "height": 640})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    page = context.new_page()
    page.goto(server)
    draw(page, FOUR, centre=0.3)
    draw(page, TWO, centre=0.7)
    assert answer(page) == "42"
    assert page.locator("#readings li").count() == 2
    assert page.locator("#bars li").count() == 0 and page.locator("#seen").is_hidden()
    assert overlay_inked(page)  # each digit's box, reading and confidence over the drawing
    page.screenshot(path=tmp_path / "page-number.png")
    page.click("#copy")
    assert page.evaluate("navigator.clipboard.readText()") == "42"

    page.click("label:has(input[value=digit])")  # the same drawing as one digit: no boxes
    assert len(answer(page)) == 1 and not overlay_inked(page)
    page.click("label:has(input[value=auto])")
    page.click("#clear")
    draw(page, SEVEN)
    assert answer(page) == "7" and page.locator("#readings").is_hidden()
    context.close()


def test_a_photo_of_a_number_is_read(server: str, browser, tmp_path: Path) -> None:
    images, labels = load_mnist(REAL_DATA, train=False)
    strip = np.concatenate([np.pad(images[i].numpy(), ((0, 0), (4, 4))) for i in (0, 1, 2)], 1)
    photo = tmp_path / "number.png"
    Image.fromarray(255 - np.pad(strip, 12)).resize((strip.shape[1] * 8, 8 * 52)).save(photo)
    page = browser.new_page(viewport={"width": 900, "height": 640})
    page.goto(server)
    page.set_input_files("#photo", photo)
    assert answer(page) == "".join(str(int(labels[i])) for i in (0, 1, 2))
    assert page.locator("#readings li").count() == 3 and overlay_inked(page)
    page.screenshot(path=tmp_path / "page-photo-number.png")


def test_unsure_digits_are_marked(server: str, browser, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 900, "height": 640})
    page.goto(f"{server}/?min_confidence=0.999999")  # nearly every reading is unsure
    draw(page, FOUR, centre=0.3)
    draw(page, TWO, centre=0.7)
    text = answer(page)
    unsure = page.locator("#readings li.unsure")
    assert unsure.count() == text.count("?") >= 1
    assert "unsure (marked ?)" in page.locator("#confidence").text_content()
    assert " or " in unsure.first.text_content()  # its two likeliest digits
    page.screenshot(path=tmp_path / "page-unsure.png")


@pytest.fixture(scope="module")
def static_site(
    real_mnist_run: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """`digits.export format=web` of the real-MNIST model, served by `python -m http.server` on
    127.0.0.1: its URL and its folder."""
    if not WEB_RUNTIME.is_dir():
        pytest.skip("no ONNX Runtime Web (npm ci)")
    folder = tmp_path_factory.mktemp("web") / "site"
    command = [sys.executable, "-m", "digits.export", f"run={real_mnist_run}", "format=web",
               f"output={folder}", f"web_runtime={WEB_RUNTIME}"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    static = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
              "--directory", str(folder)]  # fmt: skip
    with serving(static, url):
        yield url, folder


def static_page(browser, url: str) -> tuple:
    """The static page loaded, its model ready; and the list of every URL it asked for."""
    page = browser.new_page(viewport={"width": 900, "height": 640})
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.goto(url)
    page.wait_for_function(
        "['ready', 'failed'].includes(document.body.dataset.state)", timeout=60_000
    )
    assert page.locator("#error").text_content() == ""
    return page, asked


# The test's own part: a 28x28 image drawn on the pad, each pixel as a 10x10 square, centred.
PUT_ON_PAD = """([pixels, scale]) => {
    const pad = document.getElementById('pad'), context = pad.getContext('2d');
    const image = context.createImageData(pad.width, pad.height);
    image.data.fill(255);
    const left = (pad.width - 28 * scale) / 2, top = (pad.height - 28 * scale) / 2;
    for (let y = 0; y < 28 * scale; y++) for (let x = 0; x < 28 * scale; x++) {
        const value = pixels[Math.floor(y / scale) * 28 + Math.floor(x / scale)];
        image.data.fill(value, 4 * ((top + y) * pad.width + left + x), 4 * ((top + y) * pad.width + left + x) + 3);
    }
    context.putImageData(image, 0, 0);
    return window.digitsPage.readPad();
}"""


def on_pad(digit: np.ndarray, scale: int, width: int = 420, height: int = 280) -> np.ndarray:
    """What PUT_ON_PAD draws: the pad's pixels (black ink on white) holding `digit` (MNIST's)."""
    pad = np.full((height, width), 255, np.uint8)
    top, left = (height - 28 * scale) // 2, (width - 28 * scale) // 2
    pad[top : top + 28 * scale, left : left + 28 * scale] = np.kron(
        255 - digit, np.ones((scale, scale), np.uint8)
    )
    return pad


@pytest.mark.slow
def test_the_static_page_classifies_as_onnxruntime_python_does(static_site, browser) -> None:
    url, folder = static_site
    page, asked = static_page(browser, url)
    model = OnnxModel(folder / "model.onnx")
    images, labels = load_mnist(REAL_DATA, train=False)
    worst_input, worst_probability, right = 0.0, 0.0, 0
    for index in range(50):
        digit = images[index].numpy()
        scale = (10, 3, 1)[index % 3]  # shrunk to 20x20 (area), or kept (bilinear)
        seen = page.evaluate(PUT_ON_PAD, [(255 - digit).flatten().tolist(), scale])
        expected = drawing(on_pad(digit, scale))  # digits' own preprocessing of the same pixels
        browser_input = torch.tensor(seen["input"]).view(28, 28)
        worst_input = max(worst_input, float((browser_input - expected).abs().max()))
        probabilities = model.probabilities(expected.view(1, 1, 28, 28))[0]
        difference = (torch.tensor(seen["probabilities"]) - probabilities).abs().max()
        worst_probability = max(worst_probability, float(difference))
        right += int(np.argmax(seen["probabilities"]) == int(labels[index]))
    assert worst_input < 1e-5, worst_input
    assert worst_probability < 1e-4, worst_probability
    assert right >= 45, right  # a real-MNIST model: the page reads MNIST's digits
    assert all(request.startswith(url) for request in asked), asked  # nothing from elsewhere


def test_a_digit_drawn_on_the_static_page_is_read(static_site, browser, tmp_path: Path) -> None:
    url, _ = static_site
    page, _ = static_page(browser, url)
    assert "Model: MLP" in page.locator("#model").text_content()
    for strokes, digit in ((SEVEN, "7"), (ONE, "1")):
        page.click("#clear")
        draw(page, strokes)
        page.wait_for_function(
            "document.getElementById('digit').textContent !== '?'", timeout=30_000
        )
        assert page.locator("#digit").text_content() == digit
        assert page.locator("#bars li").count() == 10
    page.screenshot(path=tmp_path / "static-page.png", full_page=True)
    page.click("#clear")
    assert page.locator("#digit").text_content() == "?"


@pytest.mark.slow
def test_the_static_page_opened_as_a_file_says_how_to_serve_it(static_site, browser) -> None:
    _, folder = static_site
    page = browser.new_page()
    page.goto((folder / "index.html").as_uri())
    error = page.locator("#error").text_content()
    assert "cannot load its model from a file" in error and "python -m http.server" in error


@pytest.mark.slow
def test_strokes_made_while_the_model_loads_are_read_once_it_has(static_site, browser) -> None:
    url, _ = static_site
    page = browser.new_page(viewport={"width": 900, "height": 640})
    held: list = []
    page.route("**/model.onnx", lambda route: held.append(route))  # waits for the test
    page.goto(url)
    page.wait_for_function("document.getElementById('confidence').textContent.includes('loading')")
    draw(page, SEVEN)
    assert held and page.locator("#digit").text_content() == "?"
    held[0].continue_()
    page.wait_for_function("document.getElementById('digit').textContent !== '?'", timeout=60_000)
    assert page.locator("#digit").text_content() == "7"


@pytest.mark.slow
def test_a_malformed_min_confidence_falls_back_with_a_note(server: str, browser) -> None:
    page = browser.new_page(viewport={"width": 900, "height": 640})
    page.goto(f"{server}/?min_confidence=0,9")
    assert "?min_confidence=0,9 is not a number from 0 to 1" in page.locator("#note").text_content()
    draw(page, SEVEN)
    assert answer(page) == "7"
    assert page.locator("#error").text_content() == ""
