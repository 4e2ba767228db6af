"""A page that needs no server: `digits.export format=web` writes a folder that any static host
serves (index.html, the model as ONNX, ONNX Runtime Web's files from its npm package), in which a
digit drawn on the page is classified by the browser itself. Nothing is fetched from elsewhere when
it runs. The page's preprocessing is for drawings only (digits.reading.preprocess.drawing)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from digits.errors import DigitsError

# The page, with the drawing pad and the look the server's page shares (digits.serving.app).
WEB_PAGE = Path(__file__).parent / "web_page"
SHARED_FILES = ("pad.js", "style.css")
RUNTIME = "onnxruntime-web"  # the folder of the export holding ONNX Runtime Web
# Its single-threaded WebAssembly build: the module (the wasm glue bundled in) and the wasm.
RUNTIME_FILES = ("ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm")
MODEL_FACTS = ("model", "test_accuracy", "temperature", "digits_version", "commit", "input")
# Written last into an exported page's folder: the files the export wrote, one per line. Only a
# folder holding this file and no other files is ever replaced.
MARKER = ".digits-web-export"


def check_runtime(runtime: Path) -> str:
    """ONNX Runtime Web's version, read from the npm package whose dist/ folder `runtime` is;
    DigitsError naming the setting when its files are not there."""
    missing = [name for name in RUNTIME_FILES if not (runtime / name).is_file()]
    package = runtime.parent / "package.json"
    if missing or not package.is_file():
        raise DigitsError(
            f"web_runtime={runtime}: no ONNX Runtime Web there (lacks {', '.join(missing) or package.name}); "
            "run `npm ci` in the digits repository (package.json pins onnxruntime-web), or give "
            "web_runtime=<its dist folder>"
        )
    return json.loads(package.read_text())["version"]


def files_in(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*") if not path.is_dir()}


def check_site_folder(folder: Path) -> None:
    """The page goes into a new folder, an empty one, or one holding only a page digits exported
    before (its MARKER lists every file there; that page is replaced): never over other files."""
    if folder.exists() and not folder.is_dir():
        raise DigitsError(f"output={folder}: a file; format=web writes a folder, give its name")
    if not folder.is_dir() or not any(folder.iterdir()):
        return
    marker = folder / MARKER
    written = set(marker.read_text().splitlines()) if marker.is_file() else set()
    if not written or not files_in(folder) <= written | {MARKER}:
        raise DigitsError(
            f"output={folder}: a folder holding other files; give a new or empty folder (a page "
            "exported before, and nothing else, is replaced)"
        )


def write_static_site(model: bytes, folder: Path, info: dict[str, str], runtime: Path) -> None:
    """Write the page into `folder`, whole or not at all: `model` (ONNX bytes), its `info`
    (digits.exported.formats.metadata), ONNX Runtime Web from `runtime` (its dist/ folder)."""
    version = check_runtime(runtime)
    check_site_folder(folder)
    partial = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        shutil.copytree(WEB_PAGE, partial)
        (partial / "model.onnx").write_bytes(model)
        facts = {key: info[key] for key in MODEL_FACTS}
        facts["test_accuracy"] = float(info["test_accuracy"]) if info["test_accuracy"] else None
        facts["temperature"] = float(info["temperature"])
        (partial / "model.json").write_text(json.dumps(facts, indent=2) + "\n")
        (partial / RUNTIME).mkdir()
        for name in RUNTIME_FILES:
            shutil.copy(runtime / name, partial / RUNTIME / name)
        (partial / RUNTIME / "NOTICE.txt").write_text(
            f"ONNX Runtime Web {version} (npm package onnxruntime-web), MIT License, "
            "Copyright (c) Microsoft Corporation.\n"
        )
        (partial / MARKER).write_text("\n".join(sorted(files_in(partial))) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        partial.rename(folder)
    except OSError as error:
        shutil.rmtree(partial, ignore_errors=True)
        raise DigitsError(
            f"{folder}: could not write the page ({error.strerror or error})"
        ) from error
