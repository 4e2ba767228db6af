"""`make bench-serving`: how fast a shipped model answers, torch eager against onnxruntime, and
`digits.serve` under load.

    python tools/bench_serving.py [models=mlp,lenet,cnn] [requests=2000] [clients=8]
        [batching_model=cnn] [batching_clients=8,200]

1. Per model (weights as initialised: speed does not depend on them), on the CPU, in this process:
   single-image latency (median and p99 of 1,000 calls) and batch-256 throughput, for the model's
   own forward (torch eager, inference mode) and for its ONNX export in onnxruntime.
2. Load: `python -m digits.serve` on 127.0.0.1 with each model's ONNX file; `clients` threads, each
   on its own keep-alive connection, send `requests` real MNIST test digits (PNG, black on white,
   112x112) to POST /predict; requests/s and p50/p99 latency, and the errors (must be 0).
3. Mixed load, on the same server: the same clients send `requests` requests that take turns being
   one digit (POST /predict), a batch of 8 digits (POST /predict/batch) and a 3-digit number
   (POST /predict?mode=number); per kind p50/p99 latency and errors, and images/s overall.
4. Batching, for `batching_model`: POST /predict with `batching_clients` concurrent clients, the
   model called by every request alone (batch_images=1) and with concurrent requests batched (the
   defaults of conf/serve.yaml), a fresh server each, taking turns.
Prints tables and writes outputs/bench/serving-<date>.json. Needs real MNIST (DIGITS_DATA_DIR).
"""

from __future__ import annotations

import http.client
import io
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from PIL import Image
from rich.console import Console
from rich.table import Table
from servers import free_port, serving  # tools/servers.py
from urllib3 import encode_multipart_formdata

import digits.train  # noqa: F401  (the schemas conf/train.yaml extends)
from digits.config import config_dir
from digits.data.idx import load_mnist
from digits.exported.formats import metadata, to_onnx
from digits.exported.onnx_model import OnnxModel
from digits.models.classifier import DigitClassifier

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = os.environ.get("DIGITS_DATA_DIR", "data")
BATCH = 8  # images in one batch request of the mixed load
NUMBER_DIGITS = 3


class Request:
    """One request of a load test: its kind, path, body and headers, and the images it sends."""

    def __init__(self, kind: str, path: str, body: bytes, content_type: str, images: int) -> None:
        self.kind, self.path, self.body, self.images = kind, path, body, images
        self.headers = {"Content-Type": content_type}

    def answered(self, status: int, answer: bytes) -> bool:
        """Whether the answer is a whole one of this kind."""
        if status != 200:
            return False
        record = json.loads(answer)
        if self.kind == "batch":
            return len(record["results"]) == self.images and all(
                "digit" in r for r in record["results"]
            )
        return "text" in record if self.kind == "number" else "digit" in record


def classifier(model: str) -> DigitClassifier:
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=[f"model={model}"])
    return DigitClassifier(cfg.model, cfg.optimizer, None, **cfg.module).eval()


def percentile(values: list[float], share: float) -> float:
    return sorted(values)[min(len(values) - 1, int(share * len(values)))]


def timings(run, single: torch.Tensor, batch: torch.Tensor, calls: int = 1000) -> dict:
    """Latency of `run(single)` (ms: median, p99) and images/s of `run(batch)`."""
    for _ in range(20):
        run(single)  # warm-up
    latencies = []
    for _ in range(calls):
        start = time.perf_counter()
        run(single)
        latencies.append((time.perf_counter() - start) * 1000)
    start, rounds = time.perf_counter(), 20
    for _ in range(rounds):
        run(batch)
    return {
        "latency_ms_p50": round(statistics.median(latencies), 3),
        "latency_ms_p99": round(percentile(latencies, 0.99), 3),
        "batch256_images_per_s": round(rounds * len(batch) / (time.perf_counter() - start)),
    }


def runtimes(model: str, onnx_path: Path) -> dict:
    """torch eager against onnxruntime for one model."""
    net = classifier(model)
    to_onnx(net, onnx_path, metadata(net, onnx_path))  # no checkpoint: the file names itself
    session = OnnxModel(onnx_path)
    single, batch = torch.rand(1, 1, 28, 28), torch.rand(256, 1, 28, 28)

    def eager(images: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return net(images).softmax(dim=1)

    return {
        "torch": timings(eager, single, batch),
        "onnxruntime": timings(lambda images: session.probabilities(images), single, batch),
    }


def png(pixels: np.ndarray, size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).resize(size).save(buffer, format="PNG")
    return buffer.getvalue()


def digit_pngs(count: int = 200) -> list[bytes]:
    """MNIST test digits as users' files: black on white, 112x112."""
    images, _ = load_mnist(DATA_ROOT, train=False)
    return [png(255 - image.numpy(), (112, 112)) for image in images[:count]]


def number_pngs(count: int = 50) -> list[bytes]:
    """Numbers of 3 MNIST test digits side by side, black on white, 336x112."""
    images, _ = load_mnist(DATA_ROOT, train=False)
    return [
        png(
            255 - np.concatenate([im.numpy() for im in images[i : i + NUMBER_DIGITS]], 1),
            (336, 112),
        )
        for i in range(0, count * NUMBER_DIGITS, NUMBER_DIGITS)
    ]


def singles(pngs: list[bytes], count: int) -> list[Request]:
    return [
        Request("single", "/predict", pngs[i % len(pngs)], "image/png", 1) for i in range(count)
    ]


def mixed(pngs: list[bytes], numbers: list[bytes], count: int) -> list[Request]:
    """Single digits, batches of BATCH and numbers, taking turns."""
    requests = []
    for i in range(count):
        if i % 3 == 0:
            requests.append(Request("single", "/predict", pngs[i % len(pngs)], "image/png", 1))
        elif i % 3 == 1:
            files = [("images", (f"{j}.png", pngs[(i + j) % len(pngs)])) for j in range(BATCH)]
            body, content_type = encode_multipart_formdata(files)
            requests.append(Request("batch", "/predict/batch", body, content_type, BATCH))
        else:
            number = numbers[i % len(numbers)]
            requests.append(Request("number", "/predict?mode=number", number, "image/png", 3))
    return requests


def load_test(port: int, requests: list[Request], clients: int) -> dict:
    """Requests/s and latency (per kind of request) of the server on `port`, with `clients`
    concurrent keep-alive clients sharing `requests`."""
    latencies: dict[str, list[float]] = {request.kind: [] for request in requests}
    errors: list[str] = []

    def client(offset: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for request in requests[offset::clients]:
            start = time.perf_counter()
            connection.request("POST", request.path, request.body, request.headers)
            response = connection.getresponse()
            answer = response.read()
            latencies[request.kind].append((time.perf_counter() - start) * 1000)
            if not request.answered(response.status, answer):
                errors.append(f"{request.kind}: {response.status} {answer[:200]!r}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    every = [latency for kind in latencies.values() for latency in kind]
    return {
        "requests": len(every),
        "clients": clients,
        "requests_per_s": round(len(every) / seconds, 1),
        "images_per_s": round(sum(request.images for request in requests) / seconds, 1),
        "latency_ms_p50": round(statistics.median(every), 1),
        "latency_ms_p99": round(percentile(every, 0.99), 1),
        "kinds": {
            kind: {
                "requests": len(values),
                "latency_ms_p50": round(statistics.median(values), 1),
                "latency_ms_p99": round(percentile(values, 0.99), 1),
            }
            for kind, values in latencies.items()
        },
        "errors": len(errors),
        "first_errors": errors[:3],
    }


def load_tests(
    model_file: Path, pngs: list[bytes], numbers: list[bytes], requests: int, clients: int
) -> tuple[dict, dict]:
    """`digits.serve` with the model: single digits, then the mixed load."""
    port = free_port()
    command = [sys.executable, "-m", "digits.serve", f"ckpt_path={model_file}", f"port={port}"]
    with serving(command, f"http://127.0.0.1:{port}/ready"):
        single = load_test(port, singles(pngs, requests), clients)
        return single, load_test(port, mixed(pngs, numbers, requests), clients)


# How digits.serve runs the model: every request calling it alone (as before batching), and with
# conf/serve.yaml's defaults (concurrent requests' images batched into one call).
BATCHING = {"alone": ["batch_images=1"], "batched": []}


def batching_load(model_file: Path, pngs: list[bytes], requests: int, clients: list[int]) -> dict:
    """POST /predict under each number of `clients`, the model called per request and batched
    (the two taking turns, a fresh server each)."""
    result: dict[str, dict[str, dict]] = {name: {} for name in BATCHING}
    for count in clients:
        for name, settings in BATCHING.items():
            port = free_port()
            command = [sys.executable, "-m", "digits.serve", f"ckpt_path={model_file}",
                       f"port={port}", *settings]  # fmt: skip
            with serving(command, f"http://127.0.0.1:{port}/ready"):
                result[name][str(count)] = load_test(port, singles(pngs, requests), count)
    return result


def main(args: dict[str, str]) -> None:
    models = args.get("models", "mlp,lenet,cnn").split(",")
    requests, clients = int(args.get("requests", 2000)), int(args.get("clients", 8))
    batching_model = args.get("batching_model", "cnn")
    batching_clients = [int(n) for n in args.get("batching_clients", "8,200").split(",")]
    console = Console()
    pngs, numbers = digit_pngs(), number_pngs()
    result: dict = {
        "date": datetime.now().isoformat(timespec="seconds"),
        "cpu_threads": torch.get_num_threads(),
        "runtimes": {},
        "load": {},
        "mixed_load": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            onnx_path = Path(tmp) / f"{model}.onnx"
            result["runtimes"][model] = runtimes(model, onnx_path)
            console.print(model, result["runtimes"][model])
            loads = load_tests(onnx_path, pngs, numbers, requests, clients)
            result["load"][model], result["mixed_load"][model] = loads
            console.print(model, *loads)
            if model == batching_model:
                result["batching"] = {"model": model} | batching_load(
                    onnx_path, pngs, requests, batching_clients
                )
    print_tables(console, result)
    out = REPO / "outputs" / "bench" / f"serving-{datetime.now():%Y-%m-%d_%H-%M-%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"written to {out}")


def print_tables(console: Console, result: dict) -> None:
    table = Table(
        title="one model call on the CPU: torch eager vs onnxruntime", header_style="bold"
    )
    for column in ("model", "runtime", "1 image p50 ms", "1 image p99 ms", "batch 256 images/s"):
        table.add_column(column, justify="right")
    for model, runtimes_ in result["runtimes"].items():
        for runtime, row in runtimes_.items():
            table.add_row(
                model,
                runtime,
                f"{row['latency_ms_p50']:.3f}",
                f"{row['latency_ms_p99']:.3f}",
                f"{row['batch256_images_per_s']:,}",
            )
    console.print(table)
    load = Table(title="digits.serve, POST /predict on 127.0.0.1", header_style="bold")
    for column in ("model", "requests", "clients", "requests/s", "p50 ms", "p99 ms", "errors"):
        load.add_column(column, justify="right")
    for model, row in result["load"].items():
        load.add_row(
            model,
            str(row["requests"]),
            str(row["clients"]),
            f"{row['requests_per_s']:.1f}",
            f"{row['latency_ms_p50']:.1f}",
            f"{row['latency_ms_p99']:.1f}",
            str(row["errors"]),
        )
    console.print(load)
    mixed_table = Table(
        title=f"digits.serve, mixed: 1 digit, a batch of {BATCH}, a {NUMBER_DIGITS}-digit number, in turn",
        header_style="bold",
    )
    for column in (
        "model",
        "kind",
        "requests",
        "p50 ms",
        "p99 ms",
        "all: requests/s",
        "images/s",
        "errors",
    ):
        mixed_table.add_column(column, justify="right")
    for model, row in result["mixed_load"].items():
        for kind, stats in row["kinds"].items():
            mixed_table.add_row(
                model,
                kind,
                str(stats["requests"]),
                f"{stats['latency_ms_p50']:.1f}",
                f"{stats['latency_ms_p99']:.1f}",
                f"{row['requests_per_s']:.1f}",
                f"{row['images_per_s']:.1f}",
                str(row["errors"]),
            )
    console.print(mixed_table)
    if "batching" in result:
        console.print(batching_table(result["batching"]))


def batching_table(batching: dict) -> Table:
    table = Table(
        title=f"digits.serve, POST /predict, {batching['model']}: the model per request or batched",
        header_style="bold",
    )
    for column in (
        "model calls",
        "clients",
        "requests",
        "requests/s",
        "p50 ms",
        "p99 ms",
        "errors",
    ):
        table.add_column(column, justify="right")
    for name in BATCHING:
        for clients, row in batching[name].items():
            table.add_row(name, clients, str(row["requests"]), f"{row['requests_per_s']:.1f}",
                          f"{row['latency_ms_p50']:.1f}", f"{row['latency_ms_p99']:.1f}",
                          str(row["errors"]))  # fmt: skip
    return table


if __name__ == "__main__":
    main(dict(arg.split("=", 1) for arg in sys.argv[1:]))
