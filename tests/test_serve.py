"""The JSON API of `digits.serve`, through FastAPI's TestClient: the answers are those of
`digits.predict`, and every bad request is a 4xx with a one-line JSON error after which the server
still answers."""

from __future__ import annotations

import base64
import io
import json
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from awkward_images import damaged_files, dot_grid, encoded, scribble  # tools/awkward_images.py
from fastapi.testclient import TestClient
from PIL import Image
from servers import free_port, wait_until_answered  # tools/servers.py

import digits
from digits.data.idx import load_mnist
from digits.exported.formats import onnx_model_of
from digits.exported.onnx_model import OnnxModel
from digits.exported.web import SHARED_FILES, WEB_PAGE
from digits.inference.predictor import Predictor
from digits.reading.images import pixel_count
from digits.reading.segment import Deadline, ReadingTimeout
from digits.runs import RunDir
from digits.serving.app import create_app
from digits.serving.limits import DecodingBudget
from digits.serving.options import ServeOptions
from digits.serving.page_routes import PAGE

LIMIT = 2**20  # bytes an image (and /predict's body) may be, in these tests
OPTIONS = ServeOptions(ckpt_path="", host="127.0.0.1", port=8000, preprocess="mnist", top_k=3,
                       min_confidence=0.0, max_upload_mb=LIMIT / 2**20, max_batch_images=5,
                       batch_images=32, batch_wait_ms=2, read_timeout_s=10, body_timeout_s=5,
                       header_timeout_s=10, keep_alive_s=75, cors_origins=[], root_path="",
                       access_log=False)  # fmt: skip


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def digit_files(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """MNIST test digits as users' files: black ink on white, 4x larger."""
    folder = tmp_path_factory.mktemp("digits")
    images, _ = load_mnist(data_root, train=False)
    files = []
    for index in range(6):
        files.append(folder / f"{index}.png")
        Image.fromarray(255 - images[index].numpy()).resize((112, 112)).save(files[-1])
    return files


@pytest.fixture(scope="module")
def client(trained_run: Path) -> Iterator[TestClient]:
    ckpt = RunDir(trained_run).best_checkpoint()
    model = onnx_model_of(ckpt)
    app = create_app(lambda: model, str(ckpt), OPTIONS)
    with TestClient(app) as client:
        assert app.state.served.wait(60)
        yield client


def test_answers_are_digits_predicts(
    client: TestClient, trained_run: Path, digit_files: list[Path]
) -> None:
    expected = Predictor(RunDir(trained_run).best_checkpoint())(digit_files, "mnist", top_k=3)
    for path, prediction in zip(digit_files, expected, strict=True):
        answer = client.post("/predict", files={"image": (path.name, path.read_bytes())})
        assert answer.status_code == 200, answer.text
        record = answer.json()
        assert record["file"] == path.name
        assert record["digit"] == prediction.digit
        assert record["confidence"] == pytest.approx(prediction.confidence, abs=1e-4)
        assert [t["digit"] for t in record["top"]] == [d for d, _ in prediction.top]
        assert set(record) == set(prediction.record())


def test_concurrent_requests_share_model_calls_and_get_their_own_answers(
    client: TestClient, trained_run: Path, digit_files: list[Path]
) -> None:
    alone = [client.post("/predict", content=path.read_bytes()).json() for path in digit_files]
    model = onnx_model_of(RunDir(trained_run).best_checkpoint())
    calls: list[int] = []
    run_model = model.probabilities

    def counted(images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        calls.append(len(images))
        return run_model(images, batch_size)

    model.probabilities = counted  # type: ignore[method-assign]
    app = create_app(lambda: model, "model.onnx", replace(OPTIONS, batch_wait_ms=500))
    with TestClient(app) as batching, ThreadPoolExecutor(len(digit_files)) as pool:
        assert app.state.served.wait(60)
        warm_up = len(calls)
        together = list(pool.map(
            lambda path: batching.post("/predict", content=path.read_bytes()).json(), digit_files
        ))  # fmt: skip
    assert together == alone
    assert sum(calls[warm_up:]) == len(digit_files)
    assert len(calls) - warm_up < len(digit_files)  # some requests shared a model call


def test_a_raw_body_answers_as_a_form_upload(client: TestClient, digit_files: list[Path]) -> None:
    data = digit_files[0].read_bytes()
    raw = client.post("/predict?top_k=10", content=data, headers={"content-type": "image/png"})
    form = client.post("/predict?top_k=10", files={"image": ("a.png", data)})
    assert raw.status_code == form.status_code == 200
    assert raw.json()["file"] == "upload"
    assert raw.json()["top"] == form.json()["top"]
    assert len(raw.json()["top"]) == 10
    assert sum(t["probability"] for t in raw.json()["top"]) == pytest.approx(1, abs=1e-4)


def test_the_image_the_network_saw_comes_back_on_request(
    client: TestClient, digit_files: list[Path]
) -> None:
    answer = client.post("/predict?image=true", content=digit_files[0].read_bytes()).json()
    prefix = "data:image/png;base64,"
    assert answer["image"].startswith(prefix)
    seen = Image.open(io.BytesIO(base64.b64decode(answer["image"][len(prefix) :])))
    assert seen.size == (28, 28) and seen.mode == "L"
    assert "image" not in client.post("/predict", content=digit_files[0].read_bytes()).json()


def test_below_min_confidence_the_answer_is_unsure(
    client: TestClient, digit_files: list[Path]
) -> None:
    data = digit_files[0].read_bytes()
    sure = client.post("/predict", content=data).json()
    unsure = client.post("/predict?min_confidence=1&top_k=1", content=data).json()
    assert "unsure" not in sure and sure["digit"] is not None
    assert unsure["unsure"] is True and unsure["digit"] is None and len(unsure["top"]) == 2


@pytest.mark.parametrize("mode", ["number", "auto"])
def test_numbers_are_read_as_digits_predict_reads_them(
    client: TestClient, trained_run: Path, digit_files: list[Path], tmp_path: Path, mode: str
) -> None:
    number = tmp_path / "number.png"
    row = [np.asarray(Image.open(path)) for path in digit_files[:3]]
    Image.fromarray(np.concatenate(row, axis=1)).save(number)
    single = digit_files[3]
    expected = Predictor(RunDir(trained_run).best_checkpoint())(
        [number, single], "mnist", 3, mode=mode
    )
    for path, prediction in zip([number, single], expected, strict=True):
        answer = client.post(
            f"/predict?mode={mode}", files={"image": (path.name, path.read_bytes())}
        )
        assert answer.status_code == 200, answer.text
        record, wanted = answer.json(), prediction.record()
        assert set(record) == set(wanted) and record.get("text") == wanted.get("text")
        if "digits" in wanted:
            assert [d["box"] for d in record["digits"]] == [d["box"] for d in wanted["digits"]]
            assert [d["digit"] for d in record["digits"]] == [d["digit"] for d in wanted["digits"]]
    assert "digits" in expected[0].record() and len(expected[0].digits) >= 1
    if mode == "number":
        assert "digits" in expected[1].record()  # even one digit is a number here
    blank = client.post(f"/predict?mode={mode}", content=png(Image.new("L", (64, 64), 255)))
    assert blank.json()["blank"] is True and blank.json()["digits"] == []


def test_a_naive_server_refuses_numbers_with_one_line(
    trained_run: Path, digit_files: list[Path]
) -> None:
    model = onnx_model_of(RunDir(trained_run).best_checkpoint())
    app = create_app(lambda: model, "model.onnx", replace(OPTIONS, preprocess="naive"))
    with TestClient(app) as naive:
        assert app.state.served.wait(60)
        answer = naive.post("/predict?mode=number", content=digit_files[0].read_bytes())
        assert answer.status_code == 422
        assert answer.json() == {
            "error": "mode=number needs preprocess=mnist or mnist_v1 (the server's is naive)"
        }
        assert naive.post("/predict", content=digit_files[0].read_bytes()).status_code == 200


def test_a_blank_image_is_an_answer_not_an_error(client: TestClient) -> None:
    answer = client.post("/predict", content=png(Image.new("L", (64, 64), 255)))
    assert answer.status_code == 200
    assert answer.json()["blank"] is True and answer.json()["digit"] is None


def bomb() -> bytes:
    """A small PNG of 8,000 x 8,000 pixels (64 megapixels, over the 50 allowed)."""
    return png(Image.new("1", (8000, 8000), 1))


def truncated() -> bytes:
    data = png(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8)))
    return data[: len(data) // 2]


def chunks(size: int) -> Iterator[bytes]:
    """A body sent in chunks, with no Content-Length."""
    for _ in range(size // 65536 + 1):
        yield b"\0" * 65536


BAD_REQUESTS = [
    ("empty body", {"content": b""}, "", 400, "upload: empty"),
    ("not an image", {"content": b"hello"}, "", 400, "upload: not an image"),
    ("truncated", {"content": truncated()}, "", 400, "upload: unreadable or damaged image"),
    ("decompression bomb", {"content": bomb()}, "", 413, "upload: image too large"),
    ("too large", {"content": b"\0" * (LIMIT + 1)}, "", 413, "request body over 1 MB"),
    ("too large, chunked", {"content": chunks(LIMIT + 1)}, "", 413, "request body over 1 MB"),
    ("form without file", {"data": {"image": "text"}}, "", 400, "the form holds no file"),
    ("form, empty file", {"files": {"image": ("a.png", b"")}}, "", 400, "a.png: empty"),
    ("form, two files", {"files": [("a", ("a.png", b"1")), ("b", ("b.png", b"2"))]}, "", 413, "more than 1 image: send one (or use /predict/batch)"),
    ("top_k=0", {"content": b"x"}, "?top_k=0", 422, "query.top_k: Input should be greater than or equal to 1"),
    ("top_k=abc", {"content": b"x"}, "?top_k=abc", 422, "query.top_k: Input should be a valid integer"),
    ("min_confidence=2", {"content": b"x"}, "?min_confidence=2", 422, "query.min_confidence: Input should be less than or equal to 1"),
    ("mode=numbers", {"content": b"x"}, "?mode=numbers", 422, "query.mode: Input should be 'digit', 'number' or 'auto'"),
    ("min_confidence=nan", {"content": b"x"}, "?min_confidence=nan", 422, "query.min_confidence: Input should be a finite number"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "body", "query", "status", "message"), BAD_REQUESTS)
def test_bad_requests_get_a_4xx_json_line_and_the_server_goes_on(
    client: TestClient,
    digit_files: list[Path],
    what: str,
    body: dict,
    query: str,
    status: int,
    message: str,
) -> None:
    answer = client.post(f"/predict{query}", **body)
    assert answer.status_code == status, answer.text
    (key,) = answer.json()
    error = answer.json()["error"]
    assert key == "error" and message in error and "\n" not in error
    assert client.post("/predict", content=digit_files[0].read_bytes()).status_code == 200


def test_health_docs_and_no_route_takes_a_path(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) == {"/predict", "/predict/batch", "/health", "/ready", "/model"}
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "image/*"} <= set(body)
    parameters = [p for route in spec["paths"].values() for op in route.values()
                  for p in op.get("parameters", [])]  # fmt: skip
    assert {p["name"] for p in parameters} == {"top_k", "image", "min_confidence", "mode"}
    assert all(p["in"] == "query" for p in parameters)
    assert client.get("/page/../../../etc/passwd").status_code == 404


def test_the_page_and_its_assets_are_served_from_digits_itself(client: TestClient) -> None:
    html = client.get("/")
    assert html.status_code == 200 and "<canvas" in html.text
    assert 'accept="image/*"' in html.text and "capture" in html.text
    for asset in ("page/app.js", "page/style.css"):  # relative: the page works under a prefix
        assert f'"{asset}"' in html.text
        assert client.get(f"/{asset}").status_code == 200
    pad = client.get("/page/pad.js")  # shared with the exported page, served from its folder
    assert pad.status_code == 200 and pad.text == (WEB_PAGE / "pad.js").read_text()
    served = [*PAGE.iterdir(), *(WEB_PAGE / name for name in SHARED_FILES)]
    for file in served:  # works offline: nothing fetched from elsewhere
        assert "://" not in file.read_text(), file


def test_a_batch_answers_each_image_in_order_with_its_own_result_or_error(
    client: TestClient, digit_files: list[Path]
) -> None:
    images = [("images", (path.name, path.read_bytes())) for path in digit_files[:2]]
    bad = [
        ("images", ("notes.txt", b"hello")),
        ("images", ("empty.png", b"")),
        ("images", ("huge.png", b"\0" * (LIMIT + 1))),  # over one image's limit, not the body's
    ]
    files = [images[0], bad[0], bad[1], images[1], bad[2]]
    answer = client.post("/predict/batch?top_k=2", files=files)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["file"] for r in results] == [name for _, (name, _) in files]
    for index, (_, (name, data)) in zip((0, 3), images, strict=True):
        alone = client.post("/predict?top_k=2", files={"image": (name, data)}).json()
        assert results[index]["digit"] == alone["digit"]
        for batched, single in zip(results[index]["top"], alone["top"], strict=True):
            assert batched["digit"] == single["digit"]
            assert batched["probability"] == pytest.approx(single["probability"], abs=1e-5)
    for index, status, message in [(1, 400, "notes.txt: not an image"), (2, 400, "empty.png: empty"),
                                   (4, 413, "huge.png: image over 1 MB (max_upload_mb)")]:  # fmt: skip
        assert results[index]["status"] == status and message in results[index]["error"]
        assert "digit" not in results[index]


def test_a_batch_reads_numbers_too(client: TestClient, digit_files: list[Path]) -> None:
    data = digit_files[0].read_bytes()
    results = client.post("/predict/batch?mode=number", files=[("images", ("a.png", data))] * 2)
    single = client.post("/predict?mode=number", content=data).json()
    assert [r["text"] for r in results.json()["results"]] == [single["text"]] * 2


def test_every_damaged_image_is_a_4xx_json_line_or_an_answer(client: TestClient) -> None:
    """A seeded corpus of damaged PNG, JPEG, GIF, TIFF, WebP and BMP files (cut short, bytes
    flipped, headers overwritten): never a 5xx, and one bad file in a batch leaves the others'
    answers as they were."""
    statuses = set()
    for name, data in damaged_files(300):
        answer = client.post("/predict?mode=auto", files={"image": (name, data)})
        statuses.add(answer.status_code)
        assert answer.status_code in (200, 400, 413, 422), (name, answer.text)
        if answer.status_code != 200:
            assert set(answer.json()) == {"error"} and name in answer.json()["error"]
    assert {200, 400} <= statuses
    bad_idat = png(Image.new("L", (8, 8), 0))  # a PNG whose image data is damaged
    at = bad_idat.index(b"IDAT") + 6
    bad_idat = bad_idat[:at] + bytes(8) + bad_idat[at + 8 :]
    good = png(Image.new("L", (64, 64), 255))
    files = [("images", ("a.png", good)), ("images", ("bad.png", bad_idat)),
             ("images", ("b.png", good))]  # fmt: skip
    results = client.post("/predict/batch", files=files).json()["results"]
    assert [r.get("status") for r in results] == [None, 400, None]
    assert "bad.png: unreadable or damaged image" in results[1]["error"]


def test_too_much_ink_is_a_422_and_a_slow_reading_a_503_within_its_limit(
    client: TestClient, trained_run: Path
) -> None:
    scribbled = encoded(scribble(2000), "PNG")
    dots = png(dot_grid(20))
    answer = client.post("/predict?mode=number", content=dots)
    assert answer.status_code == 422
    assert "too much ink to read as a number" in answer.json()["error"]
    model = onnx_model_of(RunDir(trained_run).best_checkpoint())
    app = create_app(lambda: model, "model.onnx", replace(OPTIONS, read_timeout_s=1e-6))
    with TestClient(app) as hurried:
        assert app.state.served.wait(60)
        answer = hurried.post("/predict?mode=number", content=scribbled)
        assert answer.status_code == 503
        assert "reading took longer than its limit (1e-06 s)" in answer.json()["error"]
        one_digit = hurried.post("/predict", content=scribbled)  # mode=digit: no segmentation
        assert one_digit.status_code == 200


def test_a_405_says_which_methods_are_allowed(client: TestClient) -> None:
    for path, allowed in [("/predict", "POST"), ("/predict/batch", "POST"), ("/health", "GET")]:
        answer = client.put(path)
        assert answer.status_code == 405
        assert answer.headers["allow"] == allowed and set(answer.json()) == {"error"}


def test_the_schema_requires_the_image_fields_it_is_refused_without(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    single = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["multipart/form-data"]
    batch = spec["paths"]["/predict/batch"]["post"]["requestBody"]["content"]
    assert single["schema"]["required"] == ["image"]
    assert batch["multipart/form-data"]["schema"]["required"] == ["images"]


MULTIPART = {"content-type": "multipart/form-data; boundary=x"}
BAD_BATCHES = [
    ("no form", {"content": b"x"}, 400, "send the images as the files of a multipart/form-data"),
    ("not multipart", {"data": {"images": "text"}}, 400, "send the images as the files of a multipart/form-data"),
    ("no file", {"content": b'--x\r\nContent-Disposition: form-data; name="images"\r\n\r\ntext\r\n--x--\r\n', "headers": MULTIPART}, 400, "the form holds no file"),
    ("too many", {"files": [("images", ("a.png", b"1"))] * 6}, 413, "more than 5 images in one request (max_batch_images)"),
    ("far too many", {"files": [("images", ("a.png", b"1"))] * 40}, 413, "more than 5 images in one request (max_batch_images)"),
    ("body too large", {"content": b"\0" * (5 * LIMIT + 1), "headers": MULTIPART}, 413, "request body over 5 MB (max_upload_mb)"),
    ("body too large, chunked", {"content": chunks(5 * LIMIT + 1), "headers": MULTIPART}, 413, "request body over 5 MB (max_upload_mb)"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "body", "status", "message"), BAD_BATCHES)
def test_a_bad_batch_is_one_4xx_json_line(
    client: TestClient, what: str, body: dict, status: int, message: str
) -> None:
    answer = client.post("/predict/batch", **body)
    assert answer.status_code == status, answer.text
    assert set(answer.json()) == {"error"} and message in answer.json()["error"]


def test_cors_headers_only_for_the_configured_origins(trained_run: Path) -> None:
    model = onnx_model_of(RunDir(trained_run).best_checkpoint())
    site = "https://digits.example"
    for origins, allowed in [((), None), ((site,), site)]:
        app = create_app(lambda: model, "model.onnx", replace(OPTIONS, cors_origins=origins))
        with TestClient(app) as client:
            answer = client.get("/health", headers={"Origin": site})
            assert answer.headers.get("access-control-allow-origin") == allowed
            preflight = client.options(
                "/predict",
                headers={"Origin": site, "Access-Control-Request-Method": "POST"},
            )
            assert preflight.headers.get("access-control-allow-origin") == allowed
            other = client.get("/health", headers={"Origin": "https://elsewhere.example"})
            assert "access-control-allow-origin" not in other.headers


def test_behind_a_path_prefix_the_docs_link_through_it(trained_run: Path) -> None:
    model = onnx_model_of(RunDir(trained_run).best_checkpoint())
    app = create_app(lambda: model, "model.onnx", OPTIONS)
    with TestClient(app, root_path="/digits") as client:
        assert "/digits/openapi.json" in client.get("/docs").text
        assert client.get("/openapi.json").json()["servers"] == [{"url": "/digits"}]
    html = (PAGE / "index.html").read_text() + (PAGE / "app.js").read_text()
    assert not re.search(r"""(src|href|action)="/|fetch\(["'`]/""", html)  # relative links only


class SlowModel:
    """A loader that waits for `release` before giving the real model, and counts inferences."""

    def __init__(self, model: OnnxModel) -> None:
        self.model, self.metadata = model, model.metadata
        self.release, self.inferences = threading.Event(), []

    def __call__(self) -> SlowModel:
        self.release.wait(30)
        return self

    def probabilities(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        self.inferences.append(images.clone())
        return self.model.probabilities(images, batch_size)


def test_ready_only_once_the_model_has_loaded_and_answered(
    trained_run: Path, digit_files: list[Path]
) -> None:
    slow = SlowModel(onnx_model_of(RunDir(trained_run).best_checkpoint()))
    app = create_app(slow, "model.onnx", OPTIONS)
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200  # the process is up
        for path in ("/ready", "/model"):
            answer = client.get(path)
            assert answer.status_code == 503 and "still loading" in answer.json()["error"]
        answer = client.post("/predict", content=digit_files[0].read_bytes())
        assert answer.status_code == 503 and set(answer.json()) == {"error"}
        assert not slow.inferences
        slow.release.set()
        assert app.state.served.wait(30)
        assert client.get("/ready").json() == {"status": "ready"}
        (blank,) = slow.inferences  # the warm-up: one real inference on a blank image
        assert blank.shape == (1, 1, 28, 28) and blank.max() == 0
        assert client.post("/predict", content=digit_files[0].read_bytes()).status_code == 200


def test_a_model_that_cannot_load_is_never_ready(tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not onnx")
    stopped = threading.Event()
    app = create_app(lambda: OnnxModel(broken), str(broken), OPTIONS, stopped.set)
    with TestClient(app) as client:
        assert not app.state.served.wait(30) and stopped.is_set()
        answer = client.get("/ready")
        assert answer.status_code == 503
        assert "not a readable ONNX model" in answer.json()["error"]


def test_model_describes_the_served_model_from_its_checkpoint(
    client: TestClient, trained_run: Path
) -> None:
    from digits.models.checkpoint import load_classifier

    run = RunDir(trained_run)
    ckpt = run.best_checkpoint()
    info = client.get("/model").json()
    classifier = load_classifier(ckpt, compile=False)
    assert info["name"] == classifier.hparams.net["_target_"].rsplit(".", 1)[-1]
    assert info["reads"] == "digits"
    assert info["file"] == str(ckpt) and info["checkpoint"] == str(ckpt.resolve())
    assert info["run"] == str(run.path.resolve())
    assert info["test_accuracy"] == pytest.approx(run.test_accuracy(ckpt), abs=1e-4)
    assert info["temperature"] == pytest.approx(classifier.temperature.item(), rel=1e-5)
    assert "(N, 1, 28, 28)" in info["input"] and "white ink on black" in info["preprocessing"]
    assert info["server_preprocess"].startswith("preprocess=mnist: ")
    assert info["digits_version"] == digits.__version__
    commit = run.manifest()["code"]["commit"]
    assert info["commit"] is not None and info["commit"].startswith(commit)


def test_openapi_describes_every_answer_and_the_answers_match(
    client: TestClient, digit_files: list[Path]
) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    answers = {"DigitAnswer", "NumberAnswer", "ErrorAnswer", "ModelAnswer", "ReadyAnswer",
               "BatchAnswer", "ItemError"}  # fmt: skip
    assert answers <= set(schemas)
    predict = spec["paths"]["/predict"]["post"]["responses"]
    refs = json.dumps(predict["200"])
    assert "DigitAnswer" in refs and "NumberAnswer" in refs
    for status in ("400", "413", "422", "503"):
        assert "ErrorAnswer" in json.dumps(predict[status])

    def check(
        answer: dict, name: str
    ) -> None:  # the answer's keys are the schema's, required ones present
        schema = schemas[name]
        assert set(answer) <= set(schema["properties"]), (name, answer)
        assert set(schema.get("required", [])) <= set(answer), (name, answer)

    image = digit_files[0].read_bytes()
    check(client.post("/predict?image=true", content=image).json(), "DigitAnswer")
    number = client.post("/predict?mode=number", content=image).json()
    check(number, "NumberAnswer")
    for digit in number["digits"]:
        check(digit, "NumberDigit")
    check(client.post("/predict", content=b"not an image").json(), "ErrorAnswer")
    check(client.get("/model").json(), "ModelAnswer")
    check(client.get("/ready").json(), "ReadyAnswer")
    files = [("images", ("a.png", image)), ("images", ("b.txt", b"text"))]
    batch = client.post("/predict/batch", files=files).json()
    check(batch, "BatchAnswer")
    check(batch["results"][0], "DigitAnswer")
    check(batch["results"][1], "ItemError")
    assert "BatchAnswer" in json.dumps(spec["paths"]["/predict/batch"]["post"]["responses"]["200"])


@pytest.fixture(scope="module")
def live_server(
    trained_run: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[int, Path]]:
    """digits.serve itself on 127.0.0.1 with a 2-second body timeout; its port and its output."""
    port, log = free_port(), tmp_path_factory.mktemp("live") / "serve.log"
    command = [
        sys.executable, "-m", "digits.serve", f"ckpt_path={RunDir(trained_run).last_checkpoint}",
        f"port={port}", "body_timeout_s=2", "access_log=true",
    ]  # fmt: skip
    with log.open("w+b") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        try:
            wait_until_answered(server, output, f"http://127.0.0.1:{port}/ready", 120)
            yield port, log
        finally:
            server.terminate()
            server.wait(timeout=30)


@pytest.mark.slow
def test_a_stalled_upload_is_answered_408_within_the_body_timeout(
    live_server: tuple[int, Path],
) -> None:
    port, _ = live_server
    with socket.create_connection(("127.0.0.1", port), timeout=20) as client:
        client.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            b"Content-Length: 5000000\r\n\r\n0123456789"
        )
        start = time.monotonic()
        answer = b""
        while b"}" not in answer:
            chunk = client.recv(4096)
            if not chunk:
                break
            answer += chunk
        waited = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"request body not received within 2 s (body_timeout_s)" in answer
    assert 1.5 < waited < 10


def test_a_client_that_goes_away_mid_upload_is_no_traceback(
    live_server: tuple[int, Path], digit_files: list[Path]
) -> None:
    port, log = live_server
    body = b'--xx\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", port), timeout=20) as client:
            client.sendall(
                b"POST /predict HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: multipart/form-data; boundary=xx\r\nContent-Length: 100000\r\n\r\n"
                + body
                + b"\x89PNG"
            )
            time.sleep(0.3)
    time.sleep(1)
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/predict",
        data=digit_files[0].read_bytes(),
        headers={"Content-Type": "image/png"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # the server goes on
        assert answer.status == 200
    assert "Traceback" not in log.read_text() and "ClientDisconnect" not in log.read_text()


def test_the_access_log_has_a_line_per_request(live_server: tuple[int, Path]) -> None:
    port, log = live_server
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health?from=access-log-test") as answer:
        assert answer.status == 200
    time.sleep(0.5)
    assert '"GET /health?from=access-log-test HTTP/1.1" 200' in log.read_text()


@pytest.mark.slow
def test_sigterm_with_a_long_request_in_flight_stops_the_server_within_seconds(
    trained_run: Path, tmp_path: Path
) -> None:
    """A batch of scribbles keeps a worker busy for many seconds (read_timeout_s=120): SIGTERM
    still ends the server within 10 s, the request answered 503 in JSON, and Ctrl+C on an idle
    server is one line, no traceback."""
    import urllib3

    port, log = free_port(), tmp_path / "serve.log"
    command = [sys.executable, "-m", "digits.serve", f"ckpt_path={RunDir(trained_run).last_checkpoint}",
               f"port={port}", "read_timeout_s=120", "max_batch_images=16"]  # fmt: skip
    with log.open("w+b") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        wait_until_answered(server, output, f"http://127.0.0.1:{port}/ready", 120)
        fields = [
            ("images", (f"s{i}.png", encoded(scribble(400, seed=i), "PNG"))) for i in range(16)
        ]
        answered: dict = {}

        def send() -> None:
            url = f"http://127.0.0.1:{port}/predict/batch?mode=number"
            answer = urllib3.request("POST", url, fields=fields, timeout=120)
            answered.update(status=answer.status, body=answer.data)

        request = threading.Thread(target=send)
        request.start()
        time.sleep(2)  # the upload is in, the reading under way
        assert request.is_alive()
        stopping = time.monotonic()
        server.terminate()
        server.wait(timeout=30)
        assert time.monotonic() - stopping < 10
        request.join(30)
    assert answered["status"] == 503
    assert json.loads(answered["body"]) == {"error": "the server is shutting down: try again later"}

    port = free_port()
    command[-3] = f"port={port}"
    with log.open("w+b") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        wait_until_answered(server, output, f"http://127.0.0.1:{port}/ready", 120)
        server.send_signal(2)  # Ctrl+C
        assert server.wait(timeout=30) == 0
    assert "Traceback" not in log.read_text() and "digits: stopped" in log.read_text()


def metric_samples(client: TestClient) -> dict[tuple[str, tuple], float]:
    """GET /metrics parsed: (sample name, its labels sorted) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    answer = client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def test_metrics_count_requests_by_route_and_status_and_say_ready(
    client: TestClient, digit_files: list[Path]
) -> None:
    before = metric_samples(client)
    predicted = ("digits_requests_total", (("route", "/predict"), ("status", "200")))
    client.post("/predict", content=digit_files[0].read_bytes())
    client.post("/predict", content=b"not an image")
    client.get("/no/such/page")
    after = metric_samples(client)
    assert after[predicted] == before.get(predicted, 0) + 1
    assert after[("digits_requests_total", (("route", "/predict"), ("status", "400")))] >= 1
    assert after[("digits_requests_total", (("route", "other"), ("status", "404")))] >= 1
    assert after[("digits_ready", ())] == 1.0 and after[("digits_model_load_seconds", ())] > 0
    assert after[("digits_request_seconds_count", (("route", "/predict"),))] >= 2


def test_eight_requests_arriving_together_are_one_model_call(
    trained_run: Path, digit_files: list[Path]
) -> None:
    model = onnx_model_of(RunDir(trained_run).best_checkpoint())
    app = create_app(lambda: model, "model.onnx", replace(OPTIONS, batch_wait_ms=500))
    calls = "digits_model_call_images_bucket"
    with TestClient(app) as batching, ThreadPoolExecutor(8) as pool:
        assert app.state.served.wait(60)
        before = metric_samples(batching)
        bodies = [digit_files[i % len(digit_files)].read_bytes() for i in range(8)]
        answers = list(pool.map(lambda body: batching.post("/predict", content=body), bodies))
        after = metric_samples(batching)
    assert all(answer.status_code == 200 for answer in answers)

    def between(low: str, high: str) -> float:  # calls of more than `low` images, up to `high`
        return (after[(calls, (("le", high),))] - after[(calls, (("le", low),))]) - (
            before[(calls, (("le", high),))] - before[(calls, (("le", low),))]
        )

    assert between("4.0", "8.0") == 1  # all eight in one call
    assert (
        after[("digits_model_call_images_sum", ())] - before[("digits_model_call_images_sum", ())]
        == 8
    )


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_nor_a_break_of_the_schema(
    live_server: tuple[int, Path], tmp_path: Path
) -> None:
    """Schemathesis (`st run`) against the live server's /openapi.json: every check but
    positive_data_acceptance (a schema can say "bytes", not "bytes that decode as an image": bytes
    that are no image are refused 400 by design), a bounded number of examples, a fixed seed."""
    port, _ = live_server
    st = Path(sys.executable).parent / "st"
    command = [str(st), "run", f"http://127.0.0.1:{port}/openapi.json", "--checks", "all",
               "--exclude-checks", "positive_data_acceptance", "--max-examples", "30",
               "--seed", "1", "--workers", "1", "--generation-database", "none"]  # fmt: skip
    # In a folder of its own: st keeps a cache (.schemathesis/) where it runs.
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "Server error" not in result.stdout


def test_a_refused_cors_preflight_is_a_json_line(trained_run: Path) -> None:
    model = onnx_model_of(RunDir(trained_run).best_checkpoint())
    options = replace(OPTIONS, cors_origins=["https://digits.example"])
    with TestClient(create_app(lambda: model, "model.onnx", options)) as client:
        preflight = {"Access-Control-Request-Method": "POST"}
        allowed = client.options(
            "/predict", headers={"Origin": "https://digits.example", **preflight}
        )
        refused = client.options(
            "/predict", headers={"Origin": "https://evil.example", **preflight}
        )
    assert allowed.status_code == 200
    assert refused.status_code == 400
    assert refused.json() == {"error": "CORS preflight refused: Disallowed CORS origin"}


def test_large_images_wait_for_the_servers_budget_of_decoded_pixels() -> None:
    """The upload limit counts bytes; a PNG of a few KB can decode to 49 megapixels. Readings
    hold their image's pixels from one budget: one that does not fit waits for room, and past
    its request's deadline is a 503-worthy ReadingTimeout."""
    big = Image.new("L", (7000, 7000), 255)
    data = encoded(big, "PNG")
    assert len(data) < 200_000 and pixel_count(io.BytesIO(data)) == 49_000_000
    assert pixel_count(io.BytesIO(b"not an image")) == 0  # the decoder then says why
    budget = DecodingBudget(60_000_000)
    entered = threading.Event()
    with budget.held(49_000_000, Deadline(5)):
        with (
            pytest.raises(ReadingTimeout, match="busy reading other large images"),
            budget.held(49_000_000, Deadline(0.2)),
        ):
            pass
        with budget.held(10_000_000, Deadline(0.2)):  # a small image still fits beside it
            pass

        def second() -> None:
            with budget.held(49_000_000, Deadline(5)):
                entered.set()

        waiter = threading.Thread(target=second)
        waiter.start()
        assert not entered.wait(0.3)  # waits while the first holds its pixels
    waiter.join(5)
    assert entered.is_set() and budget.free == budget.pixels


@pytest.fixture
def header_deadline_server() -> Iterator[int]:
    """A real uvicorn server (a trivial app) with digits' protocol and a 0.5 s header deadline."""
    import uvicorn

    from digits.serving.connections import with_header_deadline

    async def app(scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        headers = [(b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    listening = socket.create_server(("127.0.0.1", 0))
    config = uvicorn.Config(app, http=with_header_deadline(0.5), timeout_keep_alive=30,
                            log_level="warning", lifespan="off")  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield listening.getsockname()[1]
    server.should_exit = True
    thread.join(5)


def closed_by_server(connection: socket.socket, within: float) -> bool:
    connection.settimeout(within)
    try:
        return connection.recv(100) == b""
    except TimeoutError:
        return False


def test_a_client_sending_its_headers_slowly_is_disconnected(header_deadline_server: int) -> None:
    """uvicorn closes no connection whose headers never end; digits' protocol does, after
    header_timeout_s: from connecting, and from the first byte of each later request."""
    port = header_deadline_server
    with socket.create_connection(("127.0.0.1", port)) as silent:
        assert closed_by_server(silent, 3)
    with socket.create_connection(("127.0.0.1", port)) as trickling:
        for byte in b"GET / HTTP/1.1\r\nHost: x\r\n":
            trickling.sendall(bytes([byte]))
            time.sleep(0.01)
        assert closed_by_server(trickling, 3)
    with socket.create_connection(("127.0.0.1", port)) as client:
        request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        for _ in range(2):  # whole headers in time: answered, and the connection kept alive
            client.sendall(request)
            answer = b""
            while not answer.endswith(b"ok"):
                answer += client.recv(1000)
            assert answer.startswith(b"HTTP/1.1 200")
            time.sleep(0.8)  # idle longer than the header deadline: keep-alive's to decide
        client.sendall(request[:10])  # a later request that stalls is closed too
        assert closed_by_server(client, 3)
