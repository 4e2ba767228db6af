"""Exported models (ONNX, TorchScript) compute what the checkpoint computes, say where they came
from, and `digits.predict` reads an .onnx file as it reads a checkpoint."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import onnx
import pytest
import torch
from crafted import onnx_classifier  # tools/crafted.py
from hydra import compose, initialize_config_dir
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from conftest import HAS_REAL_DATA, REAL_DATA, run_cli, synthetic_digits
from digits.config import config_dir
from digits.data.idx import load_mnist
from digits.errors import DigitsError
from digits.exported.formats import export
from digits.exported.onnx_model import OnnxModel
from digits.inference.predictor import Predictor
from digits.models.checkpoint import load_classifier
from digits.models.classifier import DigitClassifier
from digits.runs import RunDir

PARITY_IMAGES = 1000
MAX_DIFFERENCE = 1e-4  # of any class probability between onnxruntime (or TorchScript) and torch


def trained_checkpoint(model: str, images: torch.Tensor, labels: torch.Tensor, path: Path) -> Path:
    """A `model` (conf/model/) trained a few steps on `images`, saved as Lightning saves it."""
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=[f"model={model}"])
    classifier = DigitClassifier(cfg.model, cfg.optimizer, None, **cfg.module)
    trainer = L.Trainer(
        max_steps=30,
        limit_val_batches=0,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    loader = DataLoader(TensorDataset(images.unsqueeze(1), labels), batch_size=64, shuffle=True)
    trainer.fit(classifier, loader)
    trainer.save_checkpoint(path)
    return path


def synthetic_test_images(count: int = PARITY_IMAGES) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = synthetic_digits(count, np.random.default_rng(1))
    return torch.from_numpy(images).float() / 255, torch.from_numpy(labels).long()


@pytest.fixture(scope="module", params=["mlp", "lenet", "cnn"])
def checkpoint(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    images, labels = synthetic_test_images(1200)
    folder = tmp_path_factory.mktemp(request.param)
    return trained_checkpoint(request.param, images, labels, folder / f"{request.param}.ckpt")


def torch_probabilities(ckpt: Path, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return load_classifier(ckpt).predict_step(images.unsqueeze(1), 0)  # calibrated


def assert_same_answers(exported: torch.Tensor, expected: torch.Tensor) -> None:
    assert exported.shape == expected.shape
    assert torch.equal(exported.argmax(dim=1), expected.argmax(dim=1))
    assert (exported - expected).abs().max() < MAX_DIFFERENCE


@pytest.mark.slow
def test_onnx_and_torch_agree_on_1000_images(checkpoint: Path, tmp_path: Path) -> None:
    images, _ = synthetic_test_images()
    path = tmp_path / "model.onnx"
    export(load_classifier(checkpoint), checkpoint, path, "onnx")
    onnx.checker.check_model(onnx.load(path), full_check=True)
    exported = OnnxModel(path).probabilities(images.unsqueeze(1), batch_size=256)
    assert_same_answers(exported, torch_probabilities(checkpoint, images))


def test_torchscript_and_torch_agree_on_1000_images(checkpoint: Path, tmp_path: Path) -> None:
    images, _ = synthetic_test_images()
    path = tmp_path / "model.pt"
    info = export(load_classifier(checkpoint), checkpoint, path, "torchscript")
    files = {"digits.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.load's deprecation notice
        scripted = torch.jit.load(str(path), _extra_files=files)
    assert json.loads(files["digits.json"]) == info
    with torch.no_grad():
        assert_same_answers(scripted(images.unsqueeze(1)), torch_probabilities(checkpoint, images))


def test_onnx_batch_size_is_dynamic(checkpoint: Path, tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    export(load_classifier(checkpoint), checkpoint, path, "onnx")
    model = OnnxModel(path)
    (batch,) = [i.shape[0] for i in model.session.get_inputs()]
    assert isinstance(batch, str)  # a named dimension, not a fixed size
    images, _ = synthetic_test_images(7)
    for size in (1, 7):
        assert model.probabilities(images[:size].unsqueeze(1)).shape == (size, 10)


@pytest.mark.real_data
@pytest.mark.skipif(not HAS_REAL_DATA, reason=f"real MNIST not found under {REAL_DATA}")
def test_onnx_and_torch_agree_on_1000_real_mnist_test_images(
    checkpoint: Path, tmp_path: Path
) -> None:
    images, _ = load_mnist(REAL_DATA, train=False)
    images = images[:PARITY_IMAGES].float() / 255
    path = tmp_path / "model.onnx"
    export(load_classifier(checkpoint), checkpoint, path, "onnx")
    assert_same_answers(
        OnnxModel(path).probabilities(images.unsqueeze(1)), torch_probabilities(checkpoint, images)
    )


@pytest.mark.slow
def test_export_of_a_run_writes_its_best_model_with_where_it_came_from(
    trained_run: Path, tmp_path: Path
) -> None:
    run = RunDir(trained_run)
    result = run_cli("digits.export", f"run={run.path}", cwd=tmp_path, data_root=None)
    assert result.returncode == 0, result.stderr[-3000:]
    best = run.best_checkpoint()
    path = run.path / "export" / f"{best.stem}.onnx"
    assert str(path) in result.stdout
    metadata = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert metadata["model"] == "MLP"
    assert metadata["run"] == str(run.path.resolve())
    assert metadata["checkpoint"] == str(best.resolve())
    assert float(metadata["test_accuracy"]) == pytest.approx(run.metrics()["test/acc"], abs=1e-4)
    assert "0-1, white ink on black" in metadata["preprocessing"]
    assert json.loads(metadata["network"])["_target_"] == "digits.models.MLP"
    assert metadata["digits_version"]
    saved = torch.load(best, weights_only=True)["state_dict"]["temperature"].item()
    assert float(metadata["temperature"]) == pytest.approx(saved, rel=1e-5)


def test_a_checkpoint_never_tested_exports_with_no_test_accuracy(
    trained_run: Path, tmp_path: Path
) -> None:
    run = RunDir(trained_run)
    ckpt = run.last_checkpoint  # last.ckpt: never the tested best (that one is epochNNN-...)
    assert ckpt.name != run.best_checkpoint().name
    path = tmp_path / "last.onnx"
    info = export(load_classifier(ckpt), ckpt, path, "onnx")
    assert info["test_accuracy"] == "" and info["run"] == str(run.path.resolve())
    assert OnnxModel(path).metadata == info
    outside = Path(shutil.copy(run.best_checkpoint(), tmp_path / "best.ckpt"))  # in no run
    info = export(load_classifier(outside), outside, tmp_path / "best.onnx", "onnx")
    assert info["test_accuracy"] == "" and info["run"] == ""


def test_predict_gives_the_same_answers_from_an_onnx_file_as_from_its_checkpoint(
    trained_run: Path, data_root: Path, tmp_path: Path
) -> None:
    images, _ = load_mnist(data_root, train=False)
    files = []
    for index in range(8):
        files.append(tmp_path / f"{index}.png")
        Image.fromarray(images[index].numpy()).save(files[-1])
    ckpt = RunDir(trained_run).best_checkpoint()
    onnx_path = tmp_path / "model.onnx"
    export(load_classifier(ckpt), ckpt, onnx_path, "onnx")
    from_checkpoint = Predictor(ckpt)(files, "mnist", top_k=10)
    from_onnx = Predictor(onnx_path)(files, "mnist", top_k=10)
    for a, b in zip(from_checkpoint, from_onnx, strict=True):
        assert (a.digit, a.blank, a.error) == (b.digit, b.blank, b.error)
        by_digit = dict(b.top)
        assert all(abs(p - by_digit[d]) < MAX_DIFFERENCE for d, p in a.top)
    result = run_cli(
        "digits.predict",
        f"ckpt_path={onnx_path}",
        f"images=[{tmp_path}]",
        "output=json",
        cwd=tmp_path,
        data_root=None,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["digit"] for r in records] == [p.digit for p in from_checkpoint]


@pytest.mark.slow
def test_a_checkpoint_of_a_compiled_channels_last_model_exports_in_both_formats(
    trained_run: Path, tmp_path: Path
) -> None:
    saved = torch.load(RunDir(trained_run).last_checkpoint, weights_only=True)
    saved["hyper_parameters"] |= {"compile": True, "channels_last": True}
    ckpt = tmp_path / "compiled.ckpt"
    torch.save(saved, ckpt)
    images, _ = synthetic_test_images(64)
    expected = torch_probabilities(RunDir(trained_run).last_checkpoint, images)  # same weights
    for format in ("onnx", "torchscript"):
        output = tmp_path / f"model.{'onnx' if format == 'onnx' else 'pt'}"
        result = run_cli(
            "digits.export",
            f"ckpt_path={ckpt}",
            f"format={format}",
            f"output={output}",
            cwd=tmp_path,
            data_root=None,
        )
        assert result.returncode == 0, result.stderr[-3000:]
    assert_same_answers(
        OnnxModel(tmp_path / "model.onnx").probabilities(images.unsqueeze(1)), expected
    )
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        scripted = torch.jit.load(str(tmp_path / "model.pt"))
        assert_same_answers(scripted(images.unsqueeze(1)), expected)


def test_predict_of_an_onnx_file_never_imports_lightning(trained_run: Path, tmp_path: Path) -> None:
    ckpt = RunDir(trained_run).best_checkpoint()
    onnx_path = tmp_path / "model.onnx"
    export(load_classifier(ckpt), ckpt, onnx_path, "onnx")
    image = tmp_path / "digit.png"
    Image.fromarray((synthetic_test_images(1)[0][0] * 255).byte().numpy()).save(image)
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['digits.predict', 'ckpt_path={onnx_path}', 'images=[{image}]', 'output=json']\n"
        "runpy.run_module('digits.predict', run_name='__main__')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'lightning'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    record, loaded = result.stdout.strip().splitlines()
    assert json.loads(record)["digit"] is not None
    assert loaded == "[]"


@pytest.mark.parametrize(
    ("shape", "refusal"),
    [
        ({"batch": 4}, "not a digits model"),  # a fixed batch size: requests batched otherwise fail
        ({"outputs": 784}, "not a digits model"),  # would answer "digit 655"
        ({"count": 3}, "not a digits model"),
        ({"dtype": onnx.TensorProto.DOUBLE}, "not a digits model"),
        ({"nan": True}, "with NaN or infinite values for two images"),
    ],
)
def test_an_onnx_model_not_shaped_as_a_digits_export_is_refused_on_load(
    tmp_path: Path, shape: dict, refusal: str
) -> None:
    good = OnnxModel(onnx_classifier(tmp_path / "good.onnx"))  # the helper's own shape loads
    assert good.probabilities(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    path = onnx_classifier(tmp_path / "odd.onnx", **shape)
    with pytest.raises(DigitsError, match=refusal) as raised:
        OnnxModel(path)
    assert str(raised.value).startswith(f"ckpt_path={path}: ") and "\n" not in str(raised.value)


def test_format_web_replaces_only_a_folder_it_wrote_itself(tmp_path: Path) -> None:
    from digits.exported.web import MARKER, RUNTIME_FILES, write_static_site

    runtime = tmp_path / "onnxruntime-web" / "dist"
    runtime.mkdir(parents=True)
    for name in RUNTIME_FILES:
        (runtime / name).write_text("runtime")
    (runtime.parent / "package.json").write_text('{"version": "0"}')
    info = {"model": "MLP", "test_accuracy": "0.9", "temperature": "1.0", "digits_version": "0",
            "commit": "", "input": "images"}  # fmt: skip
    site = tmp_path / "site"
    write_static_site(b"model", site, info, runtime)
    assert (site / MARKER).is_file() and "model.onnx" in (site / MARKER).read_text()
    write_static_site(b"model 2", site, info, runtime)  # its own page: replaced
    assert (site / "model.onnx").read_bytes() == b"model 2"

    (site / "notes.txt").write_text("mine")  # a file of the user's beside the page
    mine = tmp_path / "mine"  # the user's own site, with files of the same names
    mine.mkdir()
    for name in ("index.html", "page.js", "model.json"):
        (mine / name).write_text("mine")
    for folder in (site, mine):
        before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
        with pytest.raises(DigitsError, match="a folder holding other files"):
            write_static_site(b"model", folder, info, runtime)
        assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
