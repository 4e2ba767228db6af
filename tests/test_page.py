"""The page of `digits.serve` in a real browser: Debian's headless Chromium, driven by Playwright,
against the real server on 127.0.0.1 with a model trained on real MNIST. Mouse strokes drawn on the
canvas, and an uploaded photo, must come back as the right digit."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import CHROMIUM, launch  # tools/browser.py
from PIL import Image
from servers import free_port, serving  # tools/servers.py

from conftest import REAL_DATA
from digits.data.idx import load_mnist
from digits.runs import RunDir

if not Path(CHROMIUM).is_file() and os.environ.get("CI"):
    raise RuntimeError(f"{CHROMIUM} missing: .ci/run installs Debian's chromium for this test")
pytestmark = [
    pytest.mark.real_data,
    pytest.mark.skipif(
        not Path(CHROMIUM).is_file(), reason="no chromium (apt-get install chromium)"
    ),
]

Stroke = list[tuple[float, float]]  # points as fractions of the canvas
ONE: list[Stroke] = [[(0.5, 0.15), (0.5, 0.85)]]
SEVEN: list[Stroke] = [[(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]]
ZERO: list[Stroke] = [
    [(0.5 + 0.2 * math.sin(a / 24 * 2 * math.pi), 0.5 - 0.32 * math.cos(a / 24 * 2 * math.pi))
     for a in range(25)]
]  # fmt: skip


@pytest.fixture(scope="module")
def server(real_mnist_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m digits.serve` on 127.0.0.1 with the real-MNIST model; its URL."""
    port = free_port()
    ckpt = RunDir(real_mnist_run).best_checkpoint()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "digits.serve", f"ckpt_path={ckpt}", f"port={port}"]
    with serving(command, f"{url}/health", cwd=tmp_path_factory.mktemp("serve")):
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


def draw(page, strokes: list[Stroke]) -> None:
    box = page.locator("#pad").bounding_box()
    for stroke in strokes:
        (x, y), *rest = stroke
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
        page.mouse.down()
        for x, y in rest:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=6)
        page.mouse.up()


def answer(page) -> str:
    """The digit the page shows once its answer has come."""
    page.wait_for_function("document.getElementById('digit').textContent !== '?'", timeout=30_000)
    return page.locator("#digit").text_content()


@pytest.mark.parametrize(("size", "name"), [((900, 640), "desktop"), ((390, 844), "phone")])
def test_drawn_digits_are_recognised(server: str, browser, size, name, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    page.goto(server)
    for strokes, digit in ((ONE, "1"), (SEVEN, "7"), (ZERO, "0")):
        page.click("#clear")
        draw(page, strokes)
        assert answer(page) == digit
        assert page.locator("#bars li").count() == 10
        assert page.locator("#seen").get_attribute("src").startswith("data:image/png;base64,")
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
